"""Speed, memory and accuracy on LFW: facelens against two peers, in one run.

The job, for every unique image of the LFW pairs: decode + detect + align +
embed the face nearest the centre (a centred fallback when no face is found).
Three systems do it one after another, each in its own process pinned to the
same cores:

* ``facelens``: :func:`facelens.evaluation.lfw.embed_lfw_images` (this venv);
* ``opencv_loop``: a plain per-image loop over OpenCV 4.x's ``FaceDetectorYN``
  and ``FaceRecognizerSF`` with the same YuNet and SFace model files (peer venv);
* ``face_recognition``: the ``face_recognition`` library, dlib HOG + dlib ResNet
  (peer venv).

The peer venv is made by ``benchmarks/setup_peers.sh``. Each runner reports
its image-loop time (model loading excluded and reported apart) and the
vectors it made; this script adds each child's peak RSS and CPU time (from
``wait4``), scores every system with the LFW 5-fold protocol (cosine
similarity, threshold chosen on the other folds) and writes
``benchmarks/results/speed_lfw.json`` and ``speed_lfw.md``. No network is used.

    .venv/bin/python benchmarks/speed_lfw.py              # the full run
    .venv/bin/python benchmarks/speed_lfw.py --limit 20   # 20 + 20 pairs per fold
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from facelens.evaluation.lfw import Pair, evaluate_pairs, find_images_folder, read_pairs

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
DEFAULT_PEERS_PYTHON = BENCHMARKS / ".peers-venv" / "bin" / "python"


@dataclass(frozen=True)
class System:
    """One contender: how to run it and how to show it."""

    name: str
    label: str
    script: Path
    peer: bool  # runs in the peer venv
    embedder: str = ""  # facelens runners: the embedder to run (FACELENS_BENCH_EMBEDDER)
    max_upscale: float | None = None  # facelens runners: FACELENS_BENCH_MAX_UPSCALE (default 2)


SYSTEMS = [
    # The comparison with the peers runs facelens on the same SFace file as the OpenCV loop.
    System(
        "facelens",
        "facelens (SFace, the peers' model)",
        BENCHMARKS / "runners" / "facelens_lfw.py",
        False,
        "sface-2021dec-int8bq",
    ),
    System(
        "facelens_native",
        "facelens (SFace, photos searched at their own size, as the loop does)",
        BENCHMARKS / "runners" / "facelens_lfw.py",
        False,
        "sface-2021dec-int8bq",
        1.0,
    ),
    System(
        "facelens_default",
        "facelens default (fusion-sface-dlib-flip)",
        BENCHMARKS / "runners" / "facelens_lfw.py",
        False,
        "fusion-sface-dlib-flip",
    ),
    System(
        "opencv_loop",
        "OpenCV loop (FaceDetectorYN + FaceRecognizerSF)",
        BENCHMARKS / "peers" / "opencv_loop_lfw.py",
        True,
    ),
    System(
        "face_recognition",
        "face_recognition (dlib HOG + ResNet)",
        BENCHMARKS / "peers" / "face_recognition_lfw.py",
        True,
    ),
]
TARGETS = {"face_recognition": 5.0, "opencv_loop": 1.5}  # facelens must be this many times faster


def default_data_root() -> Path:
    """``${FACELENS_DATA:-../shared/data}/lfw``, relative to the repository root."""
    return (REPO / os.environ.get("FACELENS_DATA", "../shared/data") / "lfw").resolve()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="LFW root holding pairs.txt (default: ${FACELENS_DATA:-../shared/data}/lfw)",
    )
    parser.add_argument(
        "--images", default=None, help="images folder under the root (default: found)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N same-person and N different-person pairs of each fold",
    )
    parser.add_argument("--cores", type=int, default=2, help="cores every system is pinned to")
    parser.add_argument(
        "--systems",
        default=",".join(s.name for s in SYSTEMS),
        help="comma-separated subset of: " + ", ".join(s.name for s in SYSTEMS),
    )
    parser.add_argument(
        "--peers-python",
        type=Path,
        default=Path(os.environ["PEERS_VENV"]) / "bin" / "python"
        if os.environ.get("PEERS_VENV")
        else DEFAULT_PEERS_PYTHON,
        help="python of the peer venv (default: $PEERS_VENV/bin/python or benchmarks/.peers-venv)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each system, wait up to this long for other processes to leave the cores idle",
    )
    parser.add_argument("--out-dir", type=Path, default=BENCHMARKS / "results")
    return parser.parse_args(argv)


def repo_relative(path: str) -> str:
    """``path`` relative to the repository root when it is inside it (for reports)."""
    absolute = Path(path).absolute()
    return str(absolute.relative_to(REPO)) if absolute.is_relative_to(REPO) else str(absolute)


def limit_folds(folds: list[list[Pair]], limit: int | None) -> list[list[Pair]]:
    """The first ``limit`` same-person and different-person pairs of each fold."""
    if limit is None:
        return folds
    limited = []
    for fold in folds:
        same = [p for p in fold if p.same][:limit]
        different = [p for p in fold if not p.same][:limit]
        limited.append(same + different)
    return limited


def source_state() -> dict[str, Any]:
    """Which facelens code was measured: the commit, files changed since, a digest of src/."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        except OSError:
            return ""
        return done.stdout.rstrip() if done.returncode == 0 else ""

    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "facelens").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    changed = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or "?",
        "changed_in_src": [line[3:] for line in changed.splitlines()],
        "src_sha256": digest.hexdigest()[:16],
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def cpu_flags() -> list[str]:
    """The vector-instruction flags that decide how fast float32 and int8 inference can be."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return [f for f in flags if f.startswith(("avx", "amx", "fma"))]
    return []


def memory_total_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_busy_seconds(cpus: list[int]) -> float:
    """Busy time (all processes) of the given CPUs so far, from /proc/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0].startswith("cpu") and fields[0] != "cpu" and int(fields[0][3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
            busy += user + nice + system + irq + softirq + steal
    return busy / ticks


def other_load(cpus: list[int], seconds: float = 1.0) -> float:
    """How many of the given cores other processes keep busy right now (sampled)."""
    start = cpu_busy_seconds(cpus)
    time.sleep(seconds)
    return (cpu_busy_seconds(cpus) - start) / seconds


def wait_until_quiet(cpus: list[int], max_seconds: float, busy_limit: float = 0.2) -> float:
    """Wait until other processes use less than ``busy_limit`` of the cores; the last load seen."""
    deadline = time.monotonic() + max_seconds
    announced = False
    while True:
        load = other_load(cpus)
        if load < busy_limit or time.monotonic() >= deadline:
            return load
        if not announced:
            print(
                f"  waiting for the cores to be idle (busy: {load:.2f} cores) ...", file=sys.stderr
            )
            announced = True


def warm_page_cache(paths: list[str]) -> None:
    """Read every image once so that no system pays for the first disk read."""
    for path in paths:
        Path(path).read_bytes()


def run_system(
    system: System, python: Path, files: Path, out: Path, cpus: list[int], wait_quiet: float
) -> dict[str, Any]:
    """Run one runner pinned to ``cpus``; its JSON report plus what the parent measured."""
    env = dict(os.environ)
    cores = str(len(cpus))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FACELENS_THREADS"):
        env[name] = cores
    if system.embedder:
        env["FACELENS_BENCH_EMBEDDER"] = system.embedder
    if system.max_upscale is not None:
        env["FACELENS_BENCH_MAX_UPSCALE"] = str(system.max_upscale)
    command = [str(python), str(system.script), "--list", str(files), "--out", str(out)]
    busy_before = wait_until_quiet(cpus, wait_quiet)
    busy_start = cpu_busy_seconds(cpus)
    wall_start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(
            command,
            stdout=stdout,
            env=env,
            cwd=REPO,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall_seconds = time.perf_counter() - wall_start
        busy_seconds = cpu_busy_seconds(cpus) - busy_start
        stdout.seek(0)
        output = stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"{system.name} failed (exit {process.returncode}):\n{output}")
    report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    child_cpu = usage.ru_utime + usage.ru_stime
    report.update(
        {
            "command": command,
            "process_wall_seconds": wall_seconds,
            "process_cpu_seconds": child_cpu,
            "process_peak_rss_mb": usage.ru_maxrss / 1024,  # kB on Linux
            "other_load_before": busy_before,
            # Busy time of the pinned cores not spent by this child: other processes.
            "other_load_during": max(0.0, busy_seconds - child_cpu) / wall_seconds,
        }
    )
    return report


def accuracy(folds: list[list[Pair]], images: Path, npz: Path) -> dict[str, Any]:
    """LFW 5-fold accuracy of the vectors in ``npz``, scored by cosine similarity."""
    data = np.load(npz)
    vectors = data["vectors"].astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    templates = dict(zip((str(p) for p in data["paths"]), vectors, strict=True))
    accuracies, thresholds = evaluate_pairs(folds, images, templates)
    return {
        "accuracy_mean": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "thresholds": thresholds,
        "fallback_images": [
            str(p) for p, f in zip(data["paths"], data["fallback"], strict=True) if f
        ],
    }


def markdown(result: dict[str, Any]) -> str:
    """The results as a Markdown table with the context needed to read it."""
    systems = result["systems"]
    ours = systems.get("facelens")
    machine = result["machine"]
    source = result["facelens_source"]
    lines = [
        "# LFW speed: decode + detect + align + embed",
        "",
        f"{result['images']} images ({result['pairs']} pairs, {result['folds']} folds), "
        f"{result['cores']} cores ({machine['cpu_model']}), {result['date']}.",
        f"Command: `{result['command']}`",
        f"facelens code: commit {source['commit']}"
        + (
            f" + changes to {', '.join(source['changed_in_src'])}"
            if source["changed_in_src"]
            else ""
        )
        + f" (src sha256 {source['src_sha256']}).",
        "",
        "| system | images/s | ms per image | facelens speed-up | cores used | peak RSS MB "
        "| model load s | LFW accuracy | fallbacks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, report in systems.items():
        per_image = report["total_seconds"] / report["images"]
        speed_up = (
            f"{report['total_seconds'] / ours['total_seconds']:.2f}x"
            if ours and not name.startswith("facelens")
            else "-"
        )
        lines.append(
            f"| {report['label']} | {1 / per_image:.1f} | {1000 * per_image:.2f} | {speed_up} "
            f"| {report['process_cpu_seconds'] / report['process_wall_seconds']:.2f} "
            f"| {report['process_peak_rss_mb']:.0f} | {report['load_seconds']:.2f} "
            f"| {100 * report['accuracy_mean']:.2f}% ± {100 * report['accuracy_std']:.2f} "
            f"| {report['fallbacks']} |"
        )
    lines += [
        "",
        "Times are for the image loop only (model loading has its own column); "
        "cores used is the process's CPU time over its wall time; "
        "peak RSS is each process's maximum resident set, measured by the parent (wait4). "
        "Accuracy: cosine similarity, threshold chosen on the other folds, mean ± std over folds. "
        "A fallback is an image where no face was found and a centred crop was embedded.",
    ]
    if ours:
        lines.append("")
        for name, target in TARGETS.items():
            if name in systems:
                speed_up = systems[name]["total_seconds"] / ours["total_seconds"]
                verdict = "met" if speed_up >= target else "NOT met"
                delta = 100 * (ours["accuracy_mean"] - systems[name]["accuracy_mean"])
                lines.append(
                    f"- vs {name}: {speed_up:.2f}x faster (target {target:g}x: {verdict}); "
                    f"accuracy {delta:+.2f} points."
                )
    if source.get("changed_during_run"):
        lines += ["", "Warning: src/facelens changed while this benchmark ran."]
    busy = {n: r["other_load_during"] for n, r in systems.items() if r["other_load_during"] > 0.2}
    if busy:
        lines.append("")
        lines.append(
            "Warning: other processes kept the pinned cores busy during the run "
            + ", ".join(f"{n}: {v:.2f} cores" for n, v in busy.items())
            + "; the times above are pessimistic."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = (args.data or default_data_root()).resolve()
    folds = limit_folds(read_pairs(root / "pairs.txt"), args.limit)
    images = find_images_folder(root, args.images, folds)
    unique = sorted({p for fold in folds for pair in fold for p in (pair.first, pair.second)})
    paths = [str(images / p) for p in unique]

    available = sorted(os.sched_getaffinity(0))
    if len(available) < args.cores:
        raise SystemExit(f"asked for {args.cores} cores, only {len(available)} available")
    cpus = available[: args.cores]
    wanted = [s for s in SYSTEMS if s.name in args.systems.split(",")]
    if any(s.peer for s in wanted) and not args.peers_python.exists():
        raise SystemExit(f"{args.peers_python}: no peer venv; run benchmarks/setup_peers.sh first")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(paths)} images, {sum(map(len, folds))} pairs, cores {cpus}", file=sys.stderr)
    warm_page_cache(paths)
    source = source_state()  # the facelens runner imports src/ right after this
    systems: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        files = Path(scratch) / "files.txt"
        files.write_text("\n".join(paths) + "\n")
        for system in wanted:
            print(f"running {system.name} ...", file=sys.stderr, flush=True)
            python = args.peers_python if system.peer else Path(sys.executable)
            npz = args.out_dir / f"speed_lfw_{system.name}.npz"
            report = run_system(system, python, files, npz, cpus, args.wait_quiet)
            report["label"] = system.label
            report.update(accuracy(folds, images, npz))
            systems[system.name] = report
            print(
                f"  {report['total_seconds']:.1f} s, {report['process_peak_rss_mb']:.0f} MB, "
                f"accuracy {100 * report['accuracy_mean']:.2f}%",
                file=sys.stderr,
                flush=True,
            )

    result = {
        "benchmark": "speed_lfw",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(
            [repo_relative(sys.executable), repo_relative(sys.argv[0]), *sys.argv[1:]]
        ),
        "facelens_source": {**source, "changed_during_run": source_state() != source},
        "data_root": str(root),
        "images": len(paths),
        "pairs": sum(map(len, folds)),
        "folds": len(folds),
        "limit": args.limit,
        "cores": len(cpus),
        "cpus": cpus,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_flags": cpu_flags(),
            "cpu_count": os.cpu_count(),
            "memory_total_mb": memory_total_mb(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
            "versions": {
                "facelens venv": {
                    name: importlib.metadata.version(name)
                    for name in ("facelens", "onnxruntime", "opencv-python-headless", "numpy")
                },
                **{
                    f"{n} runner": r.get("versions", {})
                    for n, r in systems.items()
                    if n != "facelens"
                },
            },
        },
        "peak_rss_of_parent_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "systems": systems,
    }
    (args.out_dir / "speed_lfw.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (args.out_dir / "speed_lfw.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
