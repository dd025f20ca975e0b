"""Ingest throughput with 1 and 2 workers: in process (threads) and on local Ray (actors).

The collection: the first ``--images`` LFW photos (250x250, one face each,
sometimes more). Each configuration ingests it into a fresh scan index and
reports images per second over the whole run (Ray's start and the actors'
model loading included) and in steady state (from the first result on).

    .venv/bin/python benchmarks/ingest_scaling.py [--images 300]

Writes ``benchmarks/results/ingest_scaling.json`` and prints Markdown for
docs/benchmarks.md, with the machine's load average (the numbers are only
comparable on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from facelens.ingest import ProcessOptions, ScanIndex, expand_sources, run_ingest
from facelens.ingest.process import ItemResult
from facelens.ingest.run import Executor, LocalExecutor
from facelens.models import registry

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from speed_lfw import cpu_busy_seconds  # noqa: E402

CPUS = sorted(os.sched_getaffinity(0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--modes", default="local-1,local-2,ray-1,ray-2")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/ingest_scaling.json")
    args = parser.parse_args()
    items = expand_sources([args.data / "lfw/images_deepfunneled"])[: args.images]
    rows = []
    for mode in args.modes.split(","):
        kind, workers = mode.split("-")
        rows.append(measure(kind, int(workers), items, args.batch_size))
        print(json.dumps(rows[-1]), file=sys.stderr)
    result = {
        "command": "benchmarks/ingest_scaling.py " + " ".join(sys.argv[1:]),
        "images": len(items),
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


def measure(kind: str, workers: int, items: list[Any], batch_size: int) -> dict[str, Any]:
    """One ingest of ``items`` into a fresh scan index; throughput whole and steady."""
    load_before = os.getloadavg()
    options = ProcessOptions(registry.DEFAULT_EMBEDDER, registry.DEFAULT_DETECTOR, threads=workers)
    busy_before = cpu_busy_seconds(CPUS)
    started = time.perf_counter()
    executor: Executor
    if kind == "ray":
        from facelens.ingest.ray_runner import RayExecutor

        executor = RayExecutor(options, None, workers)
    else:
        executor = LocalExecutor(options)
    first: list[float] = []

    def on_result(_: ItemResult) -> None:
        if not first:
            first.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        scan = ScanIndex(Path(folder) / "scan.db", options.embedder)
        try:
            summary = run_ingest(scan, items, executor, batch_size=batch_size, on_result=on_result)
        finally:
            executor.close()
            scan.close()
    total = time.perf_counter() - started
    busy = cpu_busy_seconds(CPUS) - busy_before
    steady = total - (first[0] - started)
    return {
        "mode": f"{kind}, {workers} worker{'s' if workers > 1 else ''}",
        "images": summary.processed,
        "faces": summary.faces,
        "failed": summary.failed,
        "seconds": round(total, 1),
        "images_per_second": round(summary.processed / total, 2),
        "first_result_seconds": round(first[0] - started, 1),
        "steady_images_per_second": round((summary.processed - 1) / steady, 2),
        "cores_busy": round(busy / total, 2),  # every process on the cores, Ray's included
        "load_before": [round(v, 1) for v in load_before],
        "load_after": [round(v, 1) for v in os.getloadavg()],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['images']} LFW photos, batches of {result['batch_size']}, "
        f"{result['cpus']} cores.",
        "",
        "| mode | images/s (whole run) | first result after s | images/s (steady) | cores busy "
        "| load before -> after |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['mode']} | {row['images_per_second']} | {row['first_result_seconds']} | "
            f"{row['steady_images_per_second']} | {row['cores_busy']} | "
            f"{row['load_before'][0]} -> {row['load_after'][0]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
