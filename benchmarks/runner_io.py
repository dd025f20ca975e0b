"""What every LFW speed runner shares: its arguments, package versions, and how it reports.

Imported by the runners in ``benchmarks/runners`` (facelens's venv) and
``benchmarks/peers`` (the peer venv), so it needs only the standard library and
numpy. A runner reads ``--list`` (one image path a line), writes ``--out``
(an .npz of ``paths``, ``vectors`` float32 and ``fallback`` bool) and prints
one JSON line of timings on stdout.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import resource
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def read_arguments(description: str) -> tuple[list[str], Path]:
    """The image paths to embed and the .npz to write."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--list", type=Path, required=True, help="file with one image path a line")
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write")
    args = parser.parse_args()
    paths = [line for line in args.list.read_text().splitlines() if line.strip()]
    return paths, args.out


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``names`` ("?" where one is missing)."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "?"
    return found


def write_result(
    out: Path, paths: list[str], vectors: np.ndarray, fallback: np.ndarray, report: dict[str, Any]
) -> None:
    """Save the vectors and print the report (with the fallback count and peak RSS) as JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, paths=np.array(paths), vectors=vectors.astype(np.float32), fallback=fallback)
    report = {
        **report,
        "images": len(paths),
        "fallbacks": int(fallback.sum()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(report), flush=True)
