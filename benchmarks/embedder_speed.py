"""Throughput of the whole pipeline per embedder setting, side by side in one run.

Decode + detect + align + embed of the first 1,000 LFW development images
(sorted by path) with ``FacePipeline.detect_many``, for SFace, dlib, their
fusion, each with flip test-time augmentation, and the fusion chosen for
accuracy (dlib part flipped); milliseconds per image and
the cores kept busy. Used to choose the default embedder together with the
accuracy from ``lfw_accuracy.py``. Writes ``benchmarks/results/embedder_speed.json``.

    .venv/bin/python benchmarks/embedder_speed.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent
IMAGES = 1000
SETTINGS = [
    ("sface-2021dec-int8bq", False),
    ("dlib-resnet-v1", False),
    ("fusion-sface-dlib", False),
    ("sface-2021dec-int8bq", True),
    ("fusion-sface-dlib", True),
    ("fusion-sface-dlib-flip", False),  # its dlib part always flips (the default embedder)
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    args = parser.parse_args()
    paths = sorted((args.data / "lfw/images_deepfunneled").glob("*/*.jpg"))[:IMAGES]
    for path in paths:  # read every file once, so no setting pays for the first disk read
        path.read_bytes()
    rows = []
    for embedder, flip in SETTINGS:
        pipeline = FacePipeline(embedder=embedder, flip=flip)
        list(pipeline.detect_many(paths[:16]))  # load the models, warm up
        started, cpu = time.perf_counter(), time.process_time()
        faces = sum(len(r.faces) for r in pipeline.detect_many(paths))
        wall = time.perf_counter() - started
        rows.append(
            {
                "embedder": embedder,
                "flip": flip,
                "images": len(paths),
                "faces": faces,
                "ms_per_image": round(wall / len(paths) * 1000, 2),
                "cores_busy": round((time.process_time() - cpu) / wall, 2),
            }
        )
        print(f"{embedder} flip={flip}: {rows[-1]['ms_per_image']} ms/image", file=sys.stderr)
    (REPO / "benchmarks/results/embedder_speed.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| embedder | flip | ms per image | cores busy |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['embedder']} | {'on' if r['flip'] else 'off'} | {r['ms_per_image']} | {r['cores_busy']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
