"""FER2013 faces prepared as facelens prepares faces at run time, for training and measuring.

The seeded validation split (:func:`fer_split`) is carved from
``fer2013_train`` by image: 10 % of each class, chosen by a permutation
seeded with :data:`SPLIT_SEED`. Every image then goes through the facelens
pipeline exactly as ``facelens analyze`` takes it (decode, YuNet on the image
enlarged up to 2x, the largest face, the expression template crop; the whole
image when no face is found, see :mod:`facelens.analysis.tight`) and the
grey expression crop is stored. Needs only facelens (no torch):

    PYTHONPATH=src .venv/bin/python scripts/expression_data.py \\
        --data ../shared/data/fer2013_train --out /tmp/fer_pipeline48.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facelens.analysis.crops import expression_crop
from facelens.analysis.tight import attribute_faces
from facelens.models.attributes import EXPRESSIONS
from facelens.pipeline.faces import FacePipeline

SPLIT_SEED = 18
VALIDATION_FRACTION = 0.1


def fer_items(root: Path) -> list[tuple[str, Path]]:
    """``(label, path)`` of every image of ``fer2013_train``, in a fixed order (class, name)."""
    return [(label, path) for label in EXPRESSIONS for path in sorted((root / label).glob("*.jpg"))]


def fer_split(labels: list[str], seed: int = SPLIT_SEED) -> np.ndarray:
    """A boolean mask over the items: ``True`` for the validation split (10 % of each class)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    array = np.asarray(labels)
    for label in EXPRESSIONS:
        index = np.flatnonzero(array == label)
        chosen = rng.permutation(index)[: round(len(index) * VALIDATION_FRACTION)]
        mask[chosen] = True
    return mask


def pipeline_crops(
    paths: list[Path], pipeline: FacePipeline, size: int = 48
) -> tuple[np.ndarray, np.ndarray]:
    """Grey ``size`` x ``size`` expression crops of the images as ``facelens analyze`` cuts
    them (largest face), and whether a face was detected in each."""
    crops = np.zeros((len(paths), size, size), dtype=np.uint8)
    found = np.zeros(len(paths), dtype=bool)
    started = time.perf_counter()
    for index, result in enumerate(pipeline.detect_many(paths, embed=False, keep_images=True)):
        if result.image is None:
            raise SystemExit(f"{result.source}: {result.error}")
        faces, whole = attribute_faces(pipeline, result.image, result.faces)
        crops[index] = expression_crop(result.image.pixels, faces[0].landmarks, size)
        found[index] = not whole
        if index % 2000 == 0:
            print(f"{index}/{len(paths)} {time.perf_counter() - started:.0f} s", flush=True)
    return crops, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the fer2013_train folder")
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write")
    parser.add_argument("--size", type=int, default=48, help="crop side, pixels")
    args = parser.parse_args()
    items = fer_items(args.data)
    labels = [label for label, _ in items]
    crops, found = pipeline_crops([p for _, p in items], FacePipeline(), args.size)
    np.savez_compressed(
        args.out,
        crops=crops,
        labels=np.array([EXPRESSIONS.index(x) for x in labels], dtype=np.int64),
        validation=fer_split(labels),
        found=found,
        names=np.array([f"{label}/{p.name}" for label, p in items]),
    )
    print(f"{len(items)} images, face found in {int(found.sum())}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
