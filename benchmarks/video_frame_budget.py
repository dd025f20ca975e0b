"""What one frame of video anonymization costs, stage by stage, against the real-time budget.

Each stage of ``facelens anonymize``'s one-pass hiding runs alone over the
clip, in this process, and its CPU time (all threads) is divided by the frames
it handled:

* **decode**: the clip decoded to planar YUV (``VideoReader.yuv_frames``);
* **to RGB**: one YUV frame converted to RGB (done for each searched frame);
* **search**: ``privacy.recall.find_faces_to_hide`` with the hiding detector on
  the frame's search copy (``search_side``), per searched frame;
* **draw**: ``privacy.methods.anonymize_i420_regions`` with the default blur on
  each face's region (YuNet's box grown as ``anonymize`` grows it), per region;
* **encode**: ``VideoWriter`` at the preset ``anonymize`` picks for the frame
  size (``output_preset``), per frame.

The sum per frame (searching one frame in ``DEFAULT_DETECT_EVERY``) is set
against the frame's budget on every core (``cores x 1000 / fps`` ms): the share
of the machine that real time needs before any thread waits for another.
Not counted: the process's start (imports and model loading), tracking, the
verifier's attacks and the check.

    .venv/bin/python benchmarks/video_frame_budget.py CLIP [CLIP ...] [--json OUT]
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facelens.apps.video.anonymize import (  # noqa: E402
    DEFAULT_DETECT_EVERY,
    DEFAULT_DETECT_SIDE,
    output_preset,
)
from facelens.pipeline.faces import FacePipeline  # noqa: E402
from facelens.privacy.methods import SHIPPED, anonymize_i420_regions  # noqa: E402
from facelens.privacy.recall import find_faces_to_hide, hiding_detector, search_side  # noqa: E402
from facelens.privacy.regions import grow_box  # noqa: E402
from facelens.video import VideoWriter, open_video  # noqa: E402


def cpu_ms(work: Any, count: int) -> float:
    """CPU milliseconds (every thread of the process) of ``work()`` divided by ``count``."""
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1000 / max(1, count)


def budget(clip: Path) -> dict[str, Any]:
    def decode() -> int:
        with open_video(clip) as reader:
            return sum(1 for _ in reader.yuv_frames())  # each frame dropped, as hiding does

    decoded: list[int] = []
    decode_ms = cpu_ms(lambda: decoded.append(decode()), 1) / decoded[0]
    with open_video(clip) as reader:
        fps = float(reader.info.fps or 25)
        frames = list(reader.yuv_frames())  # kept for the other stages (not timed)
    width, height = frames[0].width, frames[0].height
    searched = frames[::DEFAULT_DETECT_EVERY]
    rgb_ms = cpu_ms(lambda: [f.rgb().shape for f in searched], len(searched))
    detector = hiding_detector(FacePipeline().detector)
    side = search_side(width, height, DEFAULT_DETECT_SIDE)
    find_faces_to_hide(detector, searched[0].rgb(), side)  # the session's first run prepares it
    found: list[list[Any]] = []
    search_seconds = 0.0
    for frame in searched:
        pixels = frame.rgb()
        started = time.process_time()
        found.append(find_faces_to_hide(detector, pixels, side))
        search_seconds += time.process_time() - started
    search_ms = search_seconds * 1000 / len(searched)
    regions = [
        (index, grow_box(d.box, width, height))
        for index, detections in zip(
            range(0, len(frames), DEFAULT_DETECT_EVERY), found, strict=True
        )
        for d in detections
    ]
    copies = [frames[index].yuv.copy() for index, _ in regions]
    draw_ms = cpu_ms(
        lambda: [
            anonymize_i420_regions(yuv, [box], "blur", SHIPPED)
            for yuv, (_, box) in zip(copies, regions, strict=True)
        ],
        len(regions),
    )
    preset = output_preset(width, height)
    with tempfile.TemporaryDirectory() as folder, open_video(clip) as reader:
        output = Path(folder) / "out.mp4"

        def encode() -> None:
            with VideoWriter.like(output, reader, preset=preset) as writer:
                for frame in frames:
                    writer.write(frame)

        encode_ms = cpu_ms(encode, len(frames))
    regions_per_frame = len(regions) * DEFAULT_DETECT_EVERY / len(frames)
    per_frame = {
        "decode": decode_ms,
        "to_rgb": rgb_ms / DEFAULT_DETECT_EVERY,
        "search": search_ms / DEFAULT_DETECT_EVERY,
        "draw": draw_ms * regions_per_frame,
        "encode": encode_ms,
    }
    cores = len(os.sched_getaffinity(0))
    frame_budget = cores * 1000 / fps
    total = sum(per_frame.values())
    return {
        "clip": clip.name,
        "size": [width, height],
        "fps": fps,
        "frames": len(frames),
        "preset": preset,
        "search_side": side,
        "regions_per_frame": regions_per_frame,
        "cpu_ms_per_searched_frame": {"to_rgb": rgb_ms, "search": search_ms},
        "cpu_ms_per_region_drawn": draw_ms,
        "cpu_ms_per_frame": per_frame,
        "cpu_ms_per_frame_total": total,
        "cores": cores,
        "budget_ms_per_frame": frame_budget,
        "share_of_the_machine_at_real_time": total / frame_budget,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for clip in args.clips:
        row = budget(clip)
        rows.append(row)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in row["cpu_ms_per_frame"].items())
        print(
            f"{row['clip']} {row['size'][0]}x{row['size'][1]}: {stages} -> "
            f"{row['cpu_ms_per_frame_total']:.1f} of {row['budget_ms_per_frame']:.0f} CPU ms a "
            f"frame ({row['share_of_the_machine_at_real_time']:.0%} of the machine)",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "load_average_at_end": os.getloadavg()}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
