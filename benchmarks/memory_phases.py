"""Resident memory of ``eval lfw``'s work in one process, phase by phase: imports, loading, the run.

A thread samples ``VmRSS`` every 5 ms; the report gives the resident size
after the imports, the peak and the resident size after loading the models,
and the peak while ``embed_lfw_images`` runs over the images of one LFW fold
(as ``facelens eval lfw`` does), with the process's CPU seconds of the run.
``/usr/bin/time -f %M`` on the ``facelens`` command stays the figure of
record; this shows which phase a lever moves.

    .venv/bin/python benchmarks/memory_phases.py FOLD_DIR [--embedder ID] [--workers N] [--limit N]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Tracks the highest VmRSS seen since the last :meth:`reset`."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_mb()
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.005)

    def reset(self) -> float:
        peak, self.peak = self.peak, rss_mb()
        return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fold", type=Path, help="folder with pairs.txt and the images")
    parser.add_argument("--embedder", default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    args = parser.parse_args()
    ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX, as the facelens command does
    sampler = Sampler()
    sampler.start()
    from facelens.evaluation.lfw import (
        _central,
        centred_detection,
        find_images_folder,
        read_pairs,
    )
    from facelens.pipeline.faces import FacePipeline

    report = {"imports_mb": rss_mb()}
    sampler.reset()
    start = time.process_time()
    kwargs = {"embedder": args.embedder} if args.embedder else {}
    pipeline = FacePipeline(**kwargs)
    pipeline.detector, pipeline.embedder  # noqa: B018  (load both now)
    from facelens.models.runtime import return_free_memory

    return_free_memory()
    report |= {
        "load_peak_mb": sampler.reset(),
        "loaded_mb": rss_mb(),
        "load_cpu_s": time.process_time() - start,
    }
    folds = read_pairs(args.fold / "pairs.txt")
    images = find_images_folder(args.fold, None, folds)
    unique = sorted({p for fold in folds for pair in fold for p in (pair.first, pair.second)})
    paths = [images / p for p in unique][: args.limit or None]
    start = time.process_time()
    faces = sum(
        len(r.faces)
        for r in pipeline.detect_many(
            paths, fallback=centred_detection, select=_central, workers=args.workers
        )
    )
    report |= {
        "run_peak_mb": sampler.reset(),
        "after_run_mb": rss_mb(),
        "run_cpu_s": time.process_time() - start,
        "images": len(paths),
        "faces": faces,
    }
    sampler.running = False
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in report.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
