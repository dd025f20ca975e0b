"""Start-up of the command line: `facelens --help` and a command's own help, this tree
against another, alternating.

Each round runs, as whole processes pinned to the same cores (:mod:`measured`), the
commands below from this tree's ``src`` and, alternating with it, from
``--baseline-src`` (a ``src`` folder, e.g. from ``git archive REV src``): wall and CPU
seconds and peak resident memory. No model is loaded by any of them; they measure
imports alone.

    mkdir -p /tmp/before && git archive REV src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/cli_startup.py --baseline-src /tmp/before/src \\
        [--rounds 3] [--json benchmarks/results/cli_startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
from measured import run_measured  # noqa: E402

SRC = BENCHMARKS.parent / "src"
COMMANDS = [["--help"], ["enroll", "--help"], ["anonymize", "--help"]]
"""What a user types first: the command list, then a command's own help."""


def facelens(src: Path, args: list[str], cpus: set[int]) -> dict[str, Any]:
    """``facelens ARGS`` with ``src`` first on the path: its figures."""
    code = "import sys; from facelens.cli.main import main; sys.argv[0] = 'facelens'; main()"
    env = {**os.environ, "PYTHONPATH": str(src)}
    with open(os.devnull, "w") as quiet:
        done = run_measured(
            [sys.executable, "-c", code, *args], cpus, env, stdout=quiet, stderr=quiet
        )
    assert done.exit_status == 0, f"facelens {' '.join(args)} from {src} failed"
    return {
        "wall_s": round(done.wall_seconds, 3),
        "cpu_s": round(done.cpu_seconds, 3),
        "peak_mb": round(done.peak_rss_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", type=Path, help="another tree's src folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    options = parser.parse_args()
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    trees = {"this tree": SRC}
    if options.baseline_src:
        trees["baseline"] = options.baseline_src.resolve()
    runs: list[dict[str, Any]] = []
    for round_number in range(1, options.rounds + 1):
        for args in COMMANDS:
            for tree, src in trees.items():
                run = {"round": round_number, "tree": tree, "command": " ".join(args)}
                runs.append(run | facelens(src, args, cpus))
    print("| command | tree | wall s (each round) | CPU s (median) | peak MB (median) |")
    print("|---|---|---|---:|---:|")
    for args in COMMANDS:
        for tree in trees:
            mine = [r for r in runs if r["tree"] == tree and r["command"] == " ".join(args)]
            walls = " / ".join(f"{r['wall_s']:.2f}" for r in mine)
            cpu = statistics.median(r["cpu_s"] for r in mine)
            peak = statistics.median(r["peak_mb"] for r in mine)
            print(f"| `facelens {' '.join(args)}` | {tree} | {walls} | {cpu:.2f} | {peak:.0f} |")
    if options.json:
        when = datetime.now(UTC).isoformat(timespec="seconds")
        options.json.write_text(json.dumps({"when": when, "cpus": sorted(cpus), "runs": runs}))


if __name__ == "__main__":
    main()
