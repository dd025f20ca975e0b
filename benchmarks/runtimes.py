"""Which runtime runs each model fastest on this machine: onnxruntime or OpenCV DNN.

* SFace: OpenCV 5 DNN on the shipped block-quantized file vs onnxruntime on
  the folded float32 graph, batches of 1, 8 and 32, 1 and 2 threads.
* dlib ResNet: onnxruntime on the graph built from dlib's file (its only runtime).
* YuNet: our onnxruntime detector vs OpenCV's ``FaceDetectorYN`` on the same
  file, on a 512x512 input (what a 250 px LFW image is searched at).

Writes ``benchmarks/results/runtimes.json`` and prints a Markdown table.
Inputs are random crops: the speed of these networks does not depend on
pixel values.

    .venv/bin/python benchmarks/runtimes.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from facelens.models import registry

REPO = Path(__file__).resolve().parent.parent
SECONDS = 4.0


def per_item_ms(run: Callable[[], object], items: int) -> float:
    """Mean milliseconds per item of ``run`` over about SECONDS (after one warm-up)."""
    run()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        run()
        count += items
    return (time.perf_counter() - started) / count * 1000


def main() -> int:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (32, 112, 112, 3), dtype=np.uint8)
    chips = rng.integers(0, 255, (32, 150, 150, 3), dtype=np.uint8)
    image = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    rows = []
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        for runtime in ("opencv", "onnxruntime"):
            embedder = registry.load_embedder(threads=threads, runtime=runtime)
            for batch in (1, 8, 32):
                ms = per_item_ms(lambda e=embedder, b=batch: e.embed(crops[:b]), batch)
                rows.append(
                    {
                        "model": "SFace",
                        "runtime": runtime,
                        "threads": threads,
                        "batch": batch,
                        "ms_per_face": round(ms, 2),
                    }
                )
        dlib = registry.load_embedder("dlib-resnet-v1", threads=threads)
        for batch in (1, 8, 32):
            ms = per_item_ms(lambda d=dlib, b=batch: d.embed(chips[:b]), batch)
            rows.append(
                {
                    "model": "dlib ResNet",
                    "runtime": "onnxruntime",
                    "threads": threads,
                    "batch": batch,
                    "ms_per_face": round(ms, 2),
                }
            )
        detector = registry.load_detector(threads=threads)
        rows.append(
            {
                "model": "YuNet 512x512",
                "runtime": "onnxruntime",
                "threads": threads,
                "batch": 1,
                "ms_per_face": round(per_item_ms(lambda d=detector: d.detect(image), 1), 2),
            }
        )
        spec = registry.get_spec(registry.DEFAULT_DETECTOR)
        opencv_detector = cv2.FaceDetectorYN.create(str(spec.path()), "", (512, 512), 0.6, 0.3)
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        rows.append(
            {
                "model": "YuNet 512x512",
                "runtime": "opencv",
                "threads": threads,
                "batch": 1,
                "ms_per_face": round(
                    per_item_ms(lambda o=opencv_detector, b=bgr: o.detect(b), 1), 2
                ),
            }
        )
    out = REPO / "benchmarks/results/runtimes.json"
    out.write_text(json.dumps({"opencv": cv2.__version__, "rows": rows}, indent=2) + "\n")
    print("| model | runtime | threads | batch | ms per image or face |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {row['runtime']} | {row['threads']} | {row['batch']} | {row['ms_per_face']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
