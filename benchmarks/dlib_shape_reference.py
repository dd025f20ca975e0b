"""Make ``tests/fixtures/dlib_shape_reference.json``: real dlib's 5 points, chips and descriptors.

facelens runs dlib's 5-point shape predictor and chip extraction without dlib
(``src/facelens/models/dlib_shape.py``); the fixture lets the tests check, on
real faces, that they compute what dlib computes. For each chosen photo (the
same choice as ``benchmarks/dlib_reference.py``: every 100th LFW image in sorted
order, plus photos from other folders of the shared data):

1. here (facelens's venv): decode the photo, detect its largest face and make
   the dlib box facelens gives the shape predictor (``dlib_resnet.dlib_box``);
   the decoded pixels go to a temporary folder outside the repository;
2. in the peer venv (real dlib, ``benchmarks/peers/dlib_tool.py shapes``), on
   those same pixels and box: ``shape_predictor`` (5 points),
   ``get_face_chip(image, shape, 150, 0.25)`` and
   ``compute_face_descriptor(image, shape)`` (dlib's whole pipeline);
3. the fixture records, per face: the photo's path relative to the data root,
   the box, dlib's 5 points (pixels of the photo, x, y), the sha256 of dlib's
   chip (never its pixels) and dlib's 128 numbers.

    .venv/bin/python benchmarks/dlib_shape_reference.py [--data ../shared/data] [--lfw-step 100]

dlib is needed only here (benchmarks/setup_peers.sh makes the peer venv).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facelens.io.image import load_image
from facelens.models.dlib_resnet import SHAPE_PREDICTOR_SHA256, dlib_box
from facelens.models.registry import get_spec, load_detector
from facelens.pipeline.detect import DEFAULT_MAX_SIDE, MAX_UPSCALE, detect_faces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dlib_reference import (
    DLIB_TOOL,
    PEERS_PYTHON,
    REPO,
    _dump,
    _float32,
    chip_sha256,
    chosen_photos,
    peer_versions,
)

FIXTURE = REPO / "tests" / "fixtures" / "dlib_shape_reference.json"
EMBEDDER = "dlib-resnet-v1"


def facelens_boxes(data: Path, photos: list[str], workdir: Path) -> list[dict[str, Any]]:
    """Per photo with a face: its path, the decoded pixels' .npy and the dlib box of its largest face."""
    detector = load_detector()
    items = []
    for index, relative in enumerate(photos):
        pixels = load_image(data / relative).pixels
        detections = detect_faces(detector, pixels, DEFAULT_MAX_SIDE, MAX_UPSCALE)
        if not detections:
            print(f"no face: {relative}", file=sys.stderr)
            continue
        largest = max(detections, key=lambda d: d.box.area)
        stored = workdir / f"{index}.npy"
        np.save(stored, pixels)
        items.append({"path": relative, "pixels": str(stored), "rect": list(dlib_box(largest))})
    return items


def dlib_shapes(items: list[dict[str, Any]], workdir: Path, peers_python: Path) -> list[Any]:
    """Real dlib's points, chips and descriptors for the given pixels and boxes."""
    listing = workdir / "images.json"
    listing.write_text(json.dumps(items))
    out = workdir / "out"
    subprocess.run(
        [str(peers_python), str(DLIB_TOOL), "shapes", "--images", str(listing), "--out", str(out)],
        check=True,
    )
    faces: list[dict[str, Any]] = json.loads((out / "shapes.json").read_text())["faces"]
    chips = np.load(out / "chips.npy")
    for face in faces:
        face["chip_sha256"] = chip_sha256(chips[face.pop("chip")])
    return faces


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--lfw-step", type=int, default=100, help="take every STEP-th LFW image")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    data = args.data.resolve()

    photos = chosen_photos(data, args.lfw_step)
    with tempfile.TemporaryDirectory(prefix="facelens-dlib-shapes-") as temporary:
        workdir = Path(temporary)
        items = facelens_boxes(data, photos, workdir)
        results = dlib_shapes(items, workdir, args.peers_python)
    entries = [
        {
            "path": item["path"],
            "rect": result["rect"],
            "points": result["points"],
            "chip_sha256": result["chip_sha256"],
            "dlib_descriptor": [_float32(v) for v in result["descriptor"]],
        }
        for item, result in zip(items, results, strict=True)
    ]
    fixture = {
        "about": (
            "Real dlib's 5-point shapes (shape_predictor_5_face_landmarks), chips "
            "(get_face_chip, 150, padding 0.25) and descriptors (compute_face_descriptor(image, "
            "shape), dlib's whole pipeline) for the largest face of each photo, from the dlib box "
            "facelens makes of its detection. Paths are relative to the shared data folder; "
            "rects are dlib rectangles [left, top, right, bottom]; points are (x, y) pixels of "
            "the photo; chips are identified by the sha256 of their RGB bytes, never stored."
        ),
        "command": " ".join(["python benchmarks/dlib_shape_reference.py", *sys.argv[1:]]),
        "model_file_sha256": get_spec(EMBEDDER).sha256,
        "shape_predictor_sha256": SHAPE_PREDICTOR_SHA256,
        "peer": peer_versions(args.peers_python),
        "facelens": importlib.metadata.version("facelens"),
        "faces": entries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dump(fixture))
    print(f"{len(entries)} faces of {len(photos)} photos -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
