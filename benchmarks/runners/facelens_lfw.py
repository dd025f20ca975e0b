"""Embed images with facelens: decode + detect + align + embed, batched.

Runs in facelens's own virtualenv. The job is the one the peer runners do
(benchmarks/peers/): the face nearest the image centre of every image in the
list, with the same centred fallback when no face is found. It goes through
:func:`facelens.evaluation.lfw.embed_lfw_images`, which is what ``facelens lfw``
runs. Model loading is timed separately from the images. The embedder is
``$FACELENS_BENCH_EMBEDDER`` (set by speed_lfw.py), else facelens's default.

Writes an .npz (``paths``, ``vectors`` float32, ``fallback`` bool) and prints one
JSON line of timings on stdout.

    python facelens_lfw.py --list files.txt --out facelens.npz
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner_io import package_versions, read_arguments, write_result


def versions() -> dict[str, str]:
    """Versions of the packages this runner measures."""
    return package_versions(
        ("facelens", "onnxruntime", "opencv-python-headless", "numpy", "pillow")
    )


def main() -> int:
    paths, out = read_arguments(__doc__.splitlines()[0])

    start = time.perf_counter()
    from facelens.evaluation.lfw import embed_lfw_images
    from facelens.models import registry
    from facelens.models.runtime import default_threads
    from facelens.pipeline.faces import FacePipeline

    embedder = os.environ.get("FACELENS_BENCH_EMBEDDER") or registry.DEFAULT_EMBEDDER
    upscale = os.environ.get("FACELENS_BENCH_MAX_UPSCALE")
    pipeline = (
        FacePipeline(embedder=embedder, max_upscale=float(upscale))
        if upscale
        else FacePipeline(embedder=embedder)
    )
    _ = pipeline.detector, pipeline.embedder  # load both models before the clock starts
    load_seconds = time.perf_counter() - start

    loop_start = time.perf_counter()
    templates, fallback_paths = embed_lfw_images(pipeline, [Path(p) for p in paths])
    total_seconds = time.perf_counter() - loop_start

    missing = [p for p in paths if p not in templates]
    if missing:
        raise SystemExit(
            f"facelens returned no template for {len(missing)} images, e.g. {missing[0]}"
        )
    vectors = np.stack([templates[p] for p in paths]).astype(np.float32)
    fallen_back = set(fallback_paths)
    fallback = np.array([p in fallen_back for p in paths], dtype=bool)

    report = {
        "system": "facelens",
        "embedder": embedder,
        "total_seconds": total_seconds,
        "load_seconds": load_seconds,
        "onnx_threads": pipeline.threads or default_threads(),
        "versions": versions(),
    }
    write_result(out, paths, vectors, fallback, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
