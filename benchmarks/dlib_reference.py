"""Make ``tests/fixtures/dlib_reference.json``: real dlib's descriptors of facelens's chips.

facelens runs dlib's ResNet without dlib (``src/facelens/models/dlib_resnet.py``);
the fixture lets the tests check, on real faces, that it computes what dlib
computes. For each chosen photo (every 100th LFW image in sorted order, plus a
few photos from other folders of the shared data):

1. here (facelens's venv): decode, detect, and cut the 150x150 chip of the
   largest face with facelens's 5-point similarity alignment onto the
   ``dlib-resnet-v1`` template (``REFERENCE_LANDMARKS``; the pipeline itself now
   uses dlib's own alignment, checked by ``benchmarks/dlib_shape_reference.py``);
   the chips go to a temporary folder outside the repository;
2. in the peer venv (real dlib 20, ``benchmarks/peers/dlib_tool.py descriptors``):
   ``face_recognition_model_v1.compute_face_descriptor(chip)`` of each chip;
3. the fixture records, per face: the photo's path relative to the data root,
   the 5 landmarks the chip was cut from (pixels of the photo, x, y), the
   chip's sha256 (never its pixels) and dlib's 128 numbers.

    .venv/bin/python benchmarks/dlib_reference.py [--data ../shared/data] [--lfw-step 100]

dlib is needed only here (benchmarks/setup_peers.sh makes the peer venv).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facelens.models.dlib_resnet import REFERENCE_LANDMARKS
from facelens.models.registry import get_spec
from facelens.pipeline.align import align_face
from facelens.pipeline.faces import FacePipeline

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
PEERS_PYTHON = BENCHMARKS / ".peers-venv" / "bin" / "python"
DLIB_TOOL = BENCHMARKS / "peers" / "dlib_tool.py"
FIXTURE = REPO / "tests" / "fixtures" / "dlib_reference.json"
EMBEDDER = "dlib-resnet-v1"

OTHER_PHOTOS = (
    "deepface_unit/tests/unit/dataset/img1.jpg",
    "deepface_unit/tests/unit/dataset/img11.jpg",
    "deepface_unit/tests/unit/dataset/img22.jpg",
    "deepface_unit/tests/unit/dataset/img47.jpg",  # really WEBP
    "face_recognition_knn/examples/knn_examples/train/biden/biden.jpg",
    "face_recognition_knn/examples/knn_examples/train/kit_harington/john1.jpeg",
    "misc_labelled_singles/ageitgey+face_recognition/examples/obama-240p.jpg",
    "misc_labelled_singles/ageitgey+face_recognition/examples/obama-1080p.jpg",
    "misc_labelled_singles/deepinsight+insightface/python-package/insightface/data/images/Tom_Hanks_54745.png",
    "group_photos/ageitgey+face_recognition/examples/two_people.jpg",
    "orl_att_faces/att_faces/s1/1.pgm",  # grey
    "yalefaces/yalefaces/subject01.happy",  # grey GIF without extension
)


def chosen_photos(data: Path, lfw_step: int) -> list[str]:
    """Paths relative to ``data``: every ``lfw_step``-th LFW image, then OTHER_PHOTOS."""
    lfw = sorted(p.relative_to(data).as_posix() for p in (data / "lfw").rglob("*.jpg"))
    if not lfw:
        raise SystemExit(f"no LFW images under {data / 'lfw'}")
    others = [p for p in OTHER_PHOTOS if (data / p).is_file()]
    return lfw[::lfw_step] + others


def _float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (exact, and short in JSON)."""
    return float(np.format_float_scientific(np.float32(value), unique=True))


def chip_sha256(chip: np.ndarray) -> str:
    """sha256 of a chip's raw bytes (150x150x3 uint8, RGB, row-major)."""
    return hashlib.sha256(np.ascontiguousarray(chip, dtype=np.uint8).tobytes()).hexdigest()


def facelens_chips(data: Path, photos: list[str]) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The largest face of each photo: its landmarks and facelens's chip.

    Photos where no face is found are left out (and named on stderr).
    """
    pipeline = FacePipeline()  # detection only; the chip is cut below
    entries, chips = [], []
    for relative in photos:
        image = pipeline.load(data / relative)
        faces = pipeline.detect(image, embed=False)
        if not faces:
            print(f"no face: {relative}", file=sys.stderr)
            continue
        face = faces[0]
        chip = align_face(image.pixels, face.landmarks, REFERENCE_LANDMARKS, (150, 150))
        entries.append(
            {
                "path": relative,
                "landmarks": [[_float32(v) for v in point] for point in face.landmarks],
                "chip_sha256": chip_sha256(chip),
            }
        )
        chips.append(chip)
    return entries, np.stack(chips).astype(np.uint8)


def dlib_descriptors(chips: np.ndarray, peers_python: Path) -> np.ndarray:
    """Real dlib's descriptors of the chips, computed in the peer venv."""
    with tempfile.TemporaryDirectory(prefix="facelens-dlib-reference-") as workdir:
        chips_file = Path(workdir) / "chips.npy"
        out = Path(workdir) / "descriptors.npy"
        np.save(chips_file, chips)
        subprocess.run(
            [
                str(peers_python),
                str(DLIB_TOOL),
                "descriptors",
                "--chips",
                str(chips_file),
                "--out",
                str(out),
            ],
            check=True,
        )
        return np.load(out)


def peer_versions(peers_python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({n: m.version(n) for n in ('dlib', 'face_recognition_models')}))"
    )
    result = subprocess.run(
        [str(peers_python), "-c", code], check=True, capture_output=True, text=True
    )
    versions: dict[str, str] = json.loads(result.stdout)
    return versions


def _dump(fixture: dict[str, Any]) -> str:
    """JSON with one line per face (the descriptors would take a line per number otherwise)."""
    head = {key: value for key, value in fixture.items() if key != "faces"}
    lines = json.dumps(head, indent=1)[:-2] + ',\n "faces": [\n'
    lines += ",\n".join("  " + json.dumps(face) for face in fixture["faces"])
    return lines + "\n ]\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--lfw-step", type=int, default=100, help="take every STEP-th LFW image")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    data = args.data.resolve()

    photos = chosen_photos(data, args.lfw_step)
    entries, chips = facelens_chips(data, photos)
    descriptors = dlib_descriptors(chips, args.peers_python)
    for entry, descriptor in zip(entries, descriptors, strict=True):
        entry["dlib_descriptor"] = [_float32(v) for v in descriptor]  # dlib computes in float32

    spec = get_spec(EMBEDDER)
    fixture = {
        "about": (
            "Real dlib's descriptors (compute_face_descriptor on the aligned chip) of the "
            "150x150 chips facelens cuts for the largest face of each photo. Paths are "
            "relative to the shared data folder; landmarks are (x, y) pixels of the photo; "
            "chips are identified by the sha256 of their RGB bytes, never stored."
        ),
        "command": " ".join(["python benchmarks/dlib_reference.py", *sys.argv[1:]]),
        "model_file_sha256": spec.sha256,
        "peer": peer_versions(args.peers_python),
        "facelens": importlib.metadata.version("facelens"),
        "chip_size": 150,
        "faces": entries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dump(fixture))
    print(f"{len(entries)} faces of {len(photos)} photos -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
