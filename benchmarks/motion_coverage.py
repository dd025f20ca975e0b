"""How well video anonymization covers faces that move fast, by how often the detector searches.

Makes 1920x1080 clips (25 fps, 8 s, mid-grey background; deleted afterwards,
never committed) in which a development video's face (``--clip``, default
``WDA_KatieHill_000.mp4``, shrunk to a square of ``size`` px) slides sideways at
``speed`` px a frame, turning back at the frame's edges (a sudden reversal, as a
whip pan or a person turning), and bobs up and down by ``bob`` px once a
second. Each clip is anonymized by ``facelens anonymize CLIP -o OUT --json
--detect-every N`` for each ``--detect-every`` value (check on). Then on every
frame YuNet (the hiding search, on a 1280 px copy) finds the face in the
**input**, and the face box's **coverage** is the share of its pixels the
output changed by more than 6 levels in some channel (blur with its grain
changes almost every pixel it covers). Reported per clip and N: the faces,
the least and the 1st-percentile coverage, the faces under 95% and 80%
covered, the check's verdict and the process's wall seconds.

    .venv/bin/python benchmarks/motion_coverage.py [--detect-every 2 3] \\
        [--json benchmarks/results/motion_coverage.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
WIDTH, HEIGHT = 1920, 1080
BACKGROUND = 110
MOVES = (
    # name, face square (px), sideways speed (px a frame), bob (px)
    ("large, 15 px a frame", 360, 15, 60),
    ("small, 5 px a frame", 128, 5, 20),
    ("medium, 30 px a frame", 200, 30, 80),
)


def moving_clip(source: Path, target: Path, size: int, speed: int, bob: int) -> None:
    """``source``'s picture shrunk to ``size`` px, sliding and bobbing on a 1080p canvas."""
    from facelens.video import VideoFrame, VideoWriter, open_video

    with (
        open_video(source) as reader,
        VideoWriter(target, width=WIDTH, height=HEIGHT, fps=reader.info.fps) as writer,
    ):
        x, step = 50.0, float(speed)
        for frame in reader:
            canvas = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
            face = cv2.resize(frame.pixels, (size, size), interpolation=cv2.INTER_AREA)
            x += step
            if x < 0 or x + size > WIDTH:
                step = -step
                x += 2 * step
            y = int(HEIGHT / 2 - size / 2 + bob * math.sin(2 * math.pi * frame.time))
            canvas[y : y + size, int(x) : int(x) + size] = face
            writer.write(VideoFrame(canvas, frame.index, frame.time))


def coverage(original: Path, output: Path) -> dict[str, Any]:
    """The share of each input face box (YuNet, the hiding search) the output changed."""
    from facelens.models.registry import load_detector
    from facelens.privacy.recall import LARGE_SIDE, find_faces_to_hide, hiding_detector
    from facelens.video import open_video

    detector = hiding_detector(load_detector())
    shares = []
    with open_video(original) as before, open_video(output) as after:
        for a, b in zip(before, after, strict=True):
            for face in find_faces_to_hide(detector, a.pixels, LARGE_SIDE):
                x0, y0 = max(0, int(face.box.x)), max(0, int(face.box.y))
                x1 = min(WIDTH, int(face.box.x + face.box.width))
                y1 = min(HEIGHT, int(face.box.y + face.box.height))
                change = np.abs(
                    b.pixels[y0:y1, x0:x1].astype(np.int16) - a.pixels[y0:y1, x0:x1]
                ).max(axis=2)
                shares.append(float((change > 6).mean()))
    covered = np.array(shares)
    return {
        "faces": len(shares),
        "least": round(float(covered.min()), 3),
        "p1": round(float(np.percentile(covered, 1)), 3),
        "under_95": int((covered < 0.95).sum()),
        "under_80": int((covered < 0.8).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clip", default="WDA_KatieHill_000.mp4", help="development video")
    parser.add_argument("--detect-every", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    found = sorted((DATA / "videos").rglob(args.clip))
    if not found:
        sys.exit(f"{args.clip} not found under {DATA / 'videos'}; set FACELENS_DATA")
    rows = []
    with tempfile.TemporaryDirectory(prefix="facelens-motion-") as folder:
        for name, size, speed, bob in MOVES:
            clip = Path(folder) / f"{size}-{speed}.mp4"
            moving_clip(found[0], clip, size, speed, bob)
            for every in args.detect_every:
                out = Path(folder) / f"out-{size}-{speed}-{every}"
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        *(sys.executable, "-m", "facelens.cli.main", "anonymize", str(clip)),
                        *("-o", str(out), "--json", "--detect-every", str(every)),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                )
                wall = time.perf_counter() - started
                record = json.loads(done.stdout)
                record = record[0] if isinstance(record, list) else record
                check = record.get("check") or {}
                row = {
                    "clip": name,
                    "detect_every": every,
                    "exit": done.returncode,
                    "check_passed": check.get("passed"),
                    "wall_s": round(wall, 2),
                    **coverage(clip, out / clip.name),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"clip": args.clip, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
