"""Embed images with facelens: decode + detect + align + embed, batched.

Runs in facelens's own virtualenv. The job is the one the peer runners do
(benchmarks/peers/): the face nearest the image centre of every image in the
list, with the same centred fallback when no face is found. It goes through
:func:`facelens.evaluation.lfw.embed_lfw_images`, which is what ``facelens lfw``
runs. Model loading is timed separately from the images.

Writes an .npz (``paths``, ``vectors`` float32, ``fallback`` bool) and prints one
JSON line of timings on stdout.

    python facelens_lfw.py --list files.txt --out facelens.npz
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def versions() -> dict[str, str]:
    """Versions of the packages this runner measures."""
    found = {}
    for name in ("facelens", "onnxruntime", "opencv-python-headless", "numpy", "pillow"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "?"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=Path, required=True, help="file with one image path a line")
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write")
    args = parser.parse_args()
    paths = [line for line in args.list.read_text().splitlines() if line.strip()]

    start = time.perf_counter()
    from facelens.evaluation.lfw import embed_lfw_images
    from facelens.models.runtime import default_threads
    from facelens.pipeline.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer()
    _ = analyzer.detector, analyzer.embedder  # load both models before the clock starts
    load_seconds = time.perf_counter() - start

    loop_start = time.perf_counter()
    templates, fallback_paths = embed_lfw_images(analyzer, [Path(p) for p in paths])
    total_seconds = time.perf_counter() - loop_start

    missing = [p for p in paths if p not in templates]
    if missing:
        raise SystemExit(
            f"facelens returned no template for {len(missing)} images, e.g. {missing[0]}"
        )
    vectors = np.stack([templates[p] for p in paths]).astype(np.float32)
    fallen_back = set(fallback_paths)
    fallback = np.array([p in fallen_back for p in paths], dtype=bool)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, paths=np.array(paths), vectors=vectors, fallback=fallback)
    report = {
        "system": "facelens",
        "images": len(paths),
        "total_seconds": total_seconds,
        "load_seconds": load_seconds,
        "fallbacks": int(fallback.sum()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "onnx_threads": analyzer.threads or default_threads(),
        "versions": versions(),
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
