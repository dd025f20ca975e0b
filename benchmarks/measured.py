"""Run a whole process pinned to some cores; its wall time, CPU time and its own peak RSS.

Why not ``wait4`` on a child of the benchmark: Linux carries a process's
peak RSS across ``exec``, and a child forked (or vforked) from the benchmark
starts from the benchmark's own resident size, so a benchmark that has
loaded models itself reports its own size for a small child (session 8:
717 MB where ``/usr/bin/time`` gave 545-561). Here the benchmark starts this
file as a small launcher; the launcher pins itself, forks the command and
reports the command's ``wait4`` figures, so the peak is the command's own
(from the launcher's 10 MB at most).

    from measured import run_measured
    result = run_measured(["facelens", "eval", "lfw", "FOLD"], cpus={0, 1}, env=os.environ)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Measured:
    """One finished process: exit status, seconds, peak resident size in MB."""

    exit_status: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def run_measured(
    command: list[str],
    cpus: set[int] | list[int],
    env: Mapping[str, str],
    cwd: Path | str | None = None,
    stdout: IO[str] | int | None = None,
    stderr: IO[str] | int | None = None,
) -> Measured:
    """Run ``command`` on ``cpus`` through the launcher (its wall time: fork to exit)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        launcher = [sys.executable, __file__, report.name, ",".join(map(str, sorted(cpus))), "--"]
        subprocess.run(
            launcher + command, env=dict(env), cwd=cwd, stdout=stdout, stderr=stderr, check=False
        )
        figures = json.loads(Path(report.name).read_text())
    return Measured(
        figures["exit_status"],
        figures["wall_seconds"],
        figures["cpu_seconds"],
        figures["peak_rss_kb"] / 1024,
    )


def _launch(report: str, cpus: str, command: list[str]) -> None:
    """The launcher: pin, fork, exec ``command``, write its ``wait4`` figures to ``report``."""
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    started = time.perf_counter()
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(child, 0)
    wall = time.perf_counter() - started
    Path(report).write_text(
        json.dumps(
            {
                "exit_status": os.waitstatus_to_exitcode(status),
                "wall_seconds": wall,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_rss_kb": usage.ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    _launch(sys.argv[1], sys.argv[2], sys.argv[4:])
