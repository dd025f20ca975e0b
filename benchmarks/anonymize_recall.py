"""Anonymization recall on the development videos and on darkened copies of them.

    .venv/bin/python benchmarks/anonymize_recall.py [--gains 1 0.3 0.1] [--baseline-src DIR]

For every clip of ``$FACELENS_DATA/videos`` and every brightness gain, a copy
of the clip is made at benchmark time (every pixel times the gain: 0.1 is a
night or stage shot; deleted afterwards, never committed) and anonymized by
``facelens anonymize CLIP -o OUT --json`` (defaults: blur, its privacy check
on). Then on every ``--every``-th frame: YuNet finds the faces of the
**original, undarkened** frame; a face whose box in the output keeps more than
30% of the fine detail (Laplacian variance) it has in the darkened input, its
pixels within 8 levels of the input's on average (untouched: the grain that
follows blur and pixelate adds detail of its own), is a **face left visible**; CenterFace (the check's independent detector) counts
the faces it still finds in the output. Row per clip and gain:
tracks, faces hidden (detections), faces left behind, check result, wall time.

``--baseline-src DIR`` runs the same on the darkened copies (gain < 1) with
another facelens source tree (e.g. the main branch's ``src``), its check off,
right after each run, on the same cores and load. Results: ``benchmarks/results/anonymize_recall.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))


def darkened(source: Path, target: Path, gain: float) -> int:
    """Copy ``source`` with every pixel times ``gain`` (audio dropped); returns frames."""
    from facelens.video import VideoFrame, VideoWriter, open_video

    with open_video(source) as reader:
        info = reader.info
        with VideoWriter(target, width=info.width, height=info.height, fps=info.fps) as writer:
            for frame in reader:
                pixels = (frame.pixels.astype(np.float32) * gain).clip(0, 255).astype(np.uint8)
                writer.write(VideoFrame(pixels, frame.index, frame.time))
            return writer.frames


def anonymize(
    clip: Path, out: Path, src: Path, options: list[str]
) -> tuple[dict[str, Any], float, int]:
    """``facelens anonymize`` from source tree ``src``: its record, wall seconds, exit status."""
    env = dict(os.environ, PYTHONPATH=str(src), FACELENS_GALLERY=str(out / "none.db"))
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facelens.cli.main",
            "anonymize",
            str(clip),
            "-o",
            str(out),
            "--json",
            *options,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    if not done.stdout.strip():
        raise SystemExit(f"anonymize failed on {clip}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)[0], wall, done.returncode


def left_behind(original: Path, dark: Path, output: Path, every: int) -> dict[str, int]:
    """On one frame in ``every``: the faces YuNet finds in the **original** (undarkened)
    frame; of those, the ones the output left visible (the face box of the output keeps more
    than 30% of the darkened input's fine detail, its Laplacian variance, and is within 8
    levels of it on average; faces with no detail left in the darkened input are not
    counted); and CenterFace's faces in the output."""
    import cv2

    from facelens.models.registry import load_detector
    from facelens.privacy.centerface import load_centerface
    from facelens.privacy.recall import find_faces_to_hide, hiding_detector
    from facelens.video import open_video

    yunet = hiding_detector(load_detector())
    centerface = load_centerface()
    counts = {"frames": 0, "faces_in_original": 0, "faces_left_visible": 0, "centerface": 0}

    def detail(pixels: np.ndarray) -> float:
        grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
        return float(cv2.Laplacian(grey, cv2.CV_32F).var())

    with (
        open_video(original, every=every) as first,
        open_video(dark, every=every) as second,
        open_video(output, every=every) as third,
    ):
        for a, b, c in zip(first, second, third, strict=False):
            counts["frames"] += 1
            for face in find_faces_to_hide(yunet, a.pixels, 960):
                x0, y0 = max(0, int(face.box.x)), max(0, int(face.box.y))
                x1 = int(face.box.x + face.box.width)
                y1 = int(face.box.y + face.box.height)
                before = detail(b.pixels[y0:y1, x0:x1])
                if before < 0.02 or x1 - x0 < 4 or y1 - y0 < 4:
                    continue  # nothing of this face is left to see in the darkened input
                counts["faces_in_original"] += 1
                box_in, box_out = b.pixels[y0:y1, x0:x1], c.pixels[y0:y1, x0:x1]
                untouched = float(np.abs(box_out.astype(np.float32) - box_in).mean()) < 8.0
                if untouched and detail(box_out) > 0.3 * before:
                    counts["faces_left_visible"] += 1
            counts["centerface"] += len(centerface.detect(c.pixels))
    return counts


def row(record: dict[str, Any], wall: float, status: int, found: dict[str, int]) -> dict[str, Any]:
    check = record.get("check") or {}
    return {
        "tracks": record.get("tracks_anonymized"),
        "faces_hidden": record.get("faces_anonymized"),
        "check_passed": check.get("passed"),
        "failures": [f["what"] for f in record.get("failures", [])],
        "exit_status": status,
        "wall_seconds": round(wall, 2),
        "passes_seconds": record.get("timing"),
        **found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gains", nargs="+", type=float, default=[1.0, 0.3, 0.1])
    parser.add_argument("--every", type=int, default=2, help="measure on 1 frame in N")
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--clips", nargs="*", default=None, help="clip names (default: all)")
    args = parser.parse_args()
    clips = sorted((DATA / "videos").rglob("*.mp4"))
    if args.clips:
        clips = [c for c in clips if c.name in args.clips]
    ours = REPO / "src"
    result: dict[str, Any] = {"command": " ".join(sys.argv), "gains": args.gains, "rows": []}
    with tempfile.TemporaryDirectory(prefix="facelens-recall-") as folder:
        work = Path(folder)
        for clip in clips:
            for gain in args.gains:
                copy = work / f"{clip.stem}_{gain:g}.mp4"
                frames = darkened(clip, copy, gain)
                entry: dict[str, Any] = {"clip": clip.name, "gain": gain, "frames": frames}
                versions: list[tuple[str, Path, list[str]]] = [("facelens", ours, [])]
                if args.baseline_src and gain < 1.0:  # the baseline on the darkened copies
                    versions.append(("baseline", args.baseline_src, ["--no-check"]))
                for label, src, options in versions:
                    out = work / f"out_{label}"
                    record, wall, status = anonymize(copy, out, src, options)
                    found = left_behind(clip, copy, Path(record["output"]), args.every)
                    entry[label] = row(record, wall, status, found)
                    print(clip.name, gain, label, entry[label], file=sys.stderr)
                result["rows"].append(entry)
                write(result)
    print(markdown(result))


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "anonymize_recall.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "anonymize_recall.md").write_text(markdown(result) + "\n")


def _verdict(passed: bool | None) -> str:
    return "not run" if passed is None else "passed" if passed else "FAILED"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Command: `{result['command']}`",
        "",
        "| clip | gain | version | tracks | faces hidden | faces left visible / faces in "
        "the input | CenterFace faces in the output | check | exit | wall s |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for entry in result["rows"]:
        for label in ("facelens", "baseline"):
            r = entry.get(label)
            if r is None:
                continue
            lines.append(
                f"| {entry['clip']} | {entry['gain']:g} | {label} | {r['tracks']} | "
                f"{r['faces_hidden']} | {r['faces_left_visible']}/{r['faces_in_original']} | "
                f"{r['centerface']} | {_verdict(r['check_passed'])} | "
                f"{r['exit_status']} | {r['wall_seconds']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
