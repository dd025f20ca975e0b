"""Which library decodes video for facelens: PyAV or OpenCV's FFmpeg backend?

Decodes every clip to RGB uint8 arrays with each library (best of ``--repeat``
runs) and reports frames per second, plus whether each library can hand the
audio track over for remuxing. Clips: the shared talking-head videos, and a
720p and a 1080p H.264 clip made from one of them (upscaled, so the content
is a real face; made in a temporary folder, never kept).

    .venv/bin/python benchmarks/video_decode.py [--repeat 3] [--markdown]

The machine load (``os.getloadavg``) is printed with the numbers: other work
on the 2 cores makes them noisy; rerun on a quiet machine for clean figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data")).resolve()


def decode_pyav(path: Path) -> int:
    """Frames decoded to RGB arrays by PyAV (threaded decoder, as facelens's reader does)."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    return count


def decode_opencv(path: Path) -> int:
    """Frames decoded by cv2.VideoCapture (FFmpeg backend) and converted BGR -> RGB."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        count += 1
    capture.release()
    return count


def audio_via_pyav(path: Path) -> str:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return "no audio track"
        packets = sum(1 for p in container.demux(container.streams.audio[0]) if p.size)
        return f"{packets} packets readable"


def audio_via_opencv(path: Path) -> str:
    # The FFmpeg backend of cv2.VideoCapture exposes no audio stream (CAP_PROP_AUDIO_* are
    # implemented by the MSMF and GStreamer backends only); check instead of assuming.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its refusal is logged
    params = [cv2.CAP_PROP_AUDIO_STREAM, 0, cv2.CAP_PROP_VIDEO_STREAM, 0]
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    opened = capture.isOpened()
    capture.release()
    return "opens with an audio stream" if opened else "cannot open audio"


def upscaled_clip(source: Path, target: Path, height: int) -> Path:
    """``source`` re-encoded as H.264 at ``height`` lines (16:9 canvas, face centred)."""
    width = height * 16 // 9
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream_in = src.streams.video[0]
        stream = out.add_stream("libx264", rate=stream_in.average_rate, options={"crf": "20"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in src.decode(stream_in):
            rgb = frame.to_ndarray(format="rgb24")
            side = height
            face = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_LINEAR)
            canvas = np.full((height, width, 3), 90, np.uint8)
            left = (width - side) // 2
            canvas[:, left : left + side] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


def best_fps(decode: object, path: Path, repeat: int) -> tuple[float, int]:
    best = 0.0
    frames = 0
    for _ in range(repeat):
        start = time.perf_counter()
        frames = decode(path)  # type: ignore[operator]
        best = max(best, frames / (time.perf_counter() - start))
    return best, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    videos = sorted((DATA / "videos").rglob("*.mp4"))
    if not videos:
        sys.exit(f"no clips under {DATA / 'videos'}; set FACELENS_DATA")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = (
            next(v for v in videos if v.name == "d9.mp4")
            if any(v.name == "d9.mp4" for v in videos)
            else videos[0]
        )
        clips = [*videos, upscaled_clip(base, Path(tmp) / "720p.mp4", 720)]
        clips.append(upscaled_clip(base, Path(tmp) / "1080p.mp4", 1080))
        for clip in clips:
            with av.open(str(clip)) as c:
                s = c.streams.video[0]
                size = f"{s.codec_context.width}x{s.codec_context.height} {s.codec_context.name}"
            load = os.getloadavg()[0]
            pyav, frames = best_fps(decode_pyav, clip, args.repeat)
            opencv, frames_cv = best_fps(decode_opencv, clip, args.repeat)
            rows.append(
                [
                    clip.name,
                    size,
                    str(frames),
                    f"{pyav:.0f}",
                    f"{opencv:.0f}" + ("" if frames_cv == frames else f" ({frames_cv} frames)"),
                    audio_via_pyav(clip),
                    audio_via_opencv(clip),
                    f"{load:.1f}",
                ]
            )
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = [
        "clip",
        "video",
        "frames",
        "PyAV fps",
        "OpenCV fps",
        "audio via PyAV",
        "audio via OpenCV (FFmpeg)",
        "load",
    ]
    print(f"av {av.__version__}, opencv {cv2.__version__}, {os.cpu_count()} cores")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |" if args.markdown else "\t".join(row))


if __name__ == "__main__":
    main()
