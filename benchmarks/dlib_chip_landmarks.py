"""Where facelens's 5 YuNet landmarks fall in dlib's 150x150 face chip.

dlib's ResNet was trained on chips cut by ``get_face_chip_details(shape5, 150,
padding=0.25)`` from its own 5-point shape predictor (eye corners and the
base of the nose), which are not YuNet's points. To cut the same chips from
YuNet's landmarks, this script:

1. in the peer venv (real dlib, ``benchmarks/peers/dlib_tool.py chips``):
   HOG detection, 5-point shape and ``get_face_chip`` for every ``--step``-th
   LFW image (sorted paths; 309 images with the default 20);
2. here: YuNet (``facelens.pipeline.detect.detect_faces``, the pipeline's own
   search settings) on every chip, keeping the face nearest the chip centre;
3. prints the median of each landmark over the chips (x, y in chip pixels)
   with its spread, as the Python array that ``REFERENCE_LANDMARKS`` in
   ``src/facelens/models/dlib_resnet.py`` holds, and writes the numbers to
   ``benchmarks/results/dlib_chip_landmarks.json``.

Chips go to a temporary folder outside the repository and are deleted.

    .venv/bin/python benchmarks/dlib_chip_landmarks.py [--data ../shared/data] [--step 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from facelens.models.registry import DEFAULT_DETECTOR, load_detector
from facelens.pipeline.detect import detect_faces

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
PEERS_PYTHON = BENCHMARKS / ".peers-venv" / "bin" / "python"
DLIB_TOOL = BENCHMARKS / "peers" / "dlib_tool.py"
NAMES = ("left eye", "right eye", "nose tip", "left mouth corner", "right mouth corner")


def lfw_images(data: Path, step: int) -> list[Path]:
    """Every ``step``-th image of the LFW folder, in sorted path order."""
    images = sorted((data / "lfw").rglob("*.jpg"))
    if not images:
        raise SystemExit(f"no LFW images under {data / 'lfw'}")
    return images[::step]


def dlib_chips(
    images: list[Path], workdir: Path, peers_python: Path
) -> tuple[np.ndarray, list[str]]:
    """dlib's own chips of ``images`` (computed by real dlib in the peer venv)."""
    listing = workdir / "images.txt"
    listing.write_text("\n".join(str(p) for p in images) + "\n")
    subprocess.run(
        [str(peers_python), str(DLIB_TOOL), "chips", "--list", str(listing), "--out", str(workdir)],
        check=True,
    )
    sources = json.loads((workdir / "chips.json").read_text())["sources"]
    return np.load(workdir / "chips.npy"), [s for s in sources if s is not None]


def chip_landmarks(chips: np.ndarray) -> np.ndarray:
    """YuNet's landmarks of the face nearest the centre of each chip; NaN where none."""
    detector = load_detector(DEFAULT_DETECTOR)
    found = np.full((len(chips), 5, 2), np.nan, dtype=np.float64)
    for index, chip in enumerate(chips):
        detections = detect_faces(detector, np.ascontiguousarray(chip))
        if not detections:
            continue
        centre = np.array([chip.shape[1] / 2, chip.shape[0] / 2])
        nearest = min(
            detections, key=lambda d: float(np.linalg.norm(np.array(d.box.center) - centre))
        )
        found[index] = nearest.landmarks
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--step", type=int, default=20, help="take every STEP-th LFW image")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument(
        "--out", type=Path, default=BENCHMARKS / "results" / "dlib_chip_landmarks.json"
    )
    args = parser.parse_args()

    images = lfw_images(args.data, args.step)
    with tempfile.TemporaryDirectory(prefix="facelens-dlib-chips-") as workdir:
        chips, sources = dlib_chips(images, Path(workdir), args.peers_python)
    landmarks = chip_landmarks(chips)
    usable = ~np.isnan(landmarks).any(axis=(1, 2))
    median = np.median(landmarks[usable], axis=0)
    spread = np.median(np.abs(landmarks[usable] - median), axis=0)  # median absolute deviation

    print(
        f"{len(images)} LFW images, {len(chips)} dlib chips, YuNet found a face on {usable.sum()}"
    )
    for name, point, mad in zip(NAMES, median, spread, strict=True):
        print(
            f"  {name:20s} x {point[0]:7.3f}  y {point[1]:7.3f}   (MAD {mad[0]:.2f}, {mad[1]:.2f} px)"
        )
    print("REFERENCE_LANDMARKS = np.array(")
    print("    [")
    for point in median:
        print(f"        [{point[0]:.4f}, {point[1]:.4f}],")
    print("    ],\n    dtype=np.float32,\n)")

    result = {
        "command": " ".join(["python benchmarks/dlib_chip_landmarks.py", *sys.argv[1:]]),
        "lfw_images": len(images),
        "dlib_chips": len(chips),
        "yunet_faces": int(usable.sum()),
        "chip_size": 150,
        "padding": 0.25,
        "landmark_order": list(NAMES),
        "median_xy": [[round(float(v), 4) for v in p] for p in median],
        "median_absolute_deviation_xy": [[round(float(v), 3) for v in p] for p in spread],
        "sources": [str(Path(s).relative_to(args.data)) for s in sources],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
