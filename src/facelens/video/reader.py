"""Frames from video files, image sequences, webcams and network streams, with PyAV.

:func:`open_video` takes:

* a file path (MP4, MOV, MKV, AVI, WEBM, anything FFmpeg reads);
* a folder of images or a glob pattern (``frames/*.png``): an image sequence,
  in natural file-name order, at ``sequence_fps`` frames per second; an
  unreadable image is reported in ``problems`` and skipped (its index stays
  taken, so indices keep matching file positions);
* a webcam index (``0`` or ``"0"``; ``/dev/videoN`` through v4l2 on Linux,
  AVFoundation on macOS);
* a URL (``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``srt://``).

Frames come out as :class:`~facelens.video.frames.VideoFrame` (RGB uint8,
index, time in seconds), optionally sampled: ``every=N`` keeps one decoded
frame in N; ``fps=F`` keeps at most F frames per second of video time (both
may be given; ``every`` applies first).

**Live sources** (webcam, network stream) are decoded by a background thread
into a queue of at most ``queue_size`` frames, so memory stays bounded however
long the stream runs. When the consumer is slower than the stream:

* ``policy="drop"`` (default for webcams and RTSP/RTMP/UDP/SRT): the
  *oldest* queued frame is dropped to make room, so what is processed stays
  close to real time; dropped frames are counted in ``dropped`` and their
  indices are missing from the output;
* ``policy="block"`` (default for HTTP(S) URLs, which are often plain files
  on a web server): the decoder waits for room, nothing is lost, and the
  source is read only as fast as it is consumed.

Files and image sequences are read in the consumer's own thread: nothing is
dropped and nothing is read ahead.

Errors: a source that cannot be opened raises :class:`VideoOpenError`. If
decoding breaks off part way (truncated file, corrupt data, a stream that
ends), the frames decoded so far are still yielded, iteration ends normally,
``complete`` turns false and ``problems`` says what happened, so a caller
always gets a well-formed, possibly shorter, result.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error
import numpy as np

from facelens import settings
from facelens.errors import FaceLensError, VideoOpenError
from facelens.io.image import load_image
from facelens.io.walk import IMAGE_SUFFIXES
from facelens.io.yuv import rgb_to_i420
from facelens.video.frames import VideoFrame, VideoInfo, YuvFrame

__all__ = [
    "STILL_IMAGE",
    "DropPolicy",
    "FrameSampler",
    "VideoReader",
    "VideoSource",
    "open_video",
    "probe_video",
]

VideoSource = str | os.PathLike[str] | int
"""A path, folder, glob pattern, URL or webcam index."""

DropPolicy = Literal["drop", "block"]

DEFAULT_QUEUE_SIZE = 8
"""Frames held at most between a live source's decoder thread and its consumer."""

DEFAULT_SEQUENCE_FPS = Fraction(25)
"""Frame rate given to image sequences (they carry none)."""

SEEK_MIN_START = 3.0
"""A file read from ``start`` seconds or later seeks to the keyframe before it instead of
decoding from the beginning; frame indices are then computed from time x frame rate."""

NETWORK_TIMEOUT = 10.0
"""Seconds to wait for a network stream to open or to send data before giving up."""

STILL_IMAGE = (
    "a still image, not a video (photos are read by `facelens identify`, `detect` and `analyze`)"
)
"""Why a file FFmpeg reads as a still image is refused as a video (see :func:`_still_image`)."""

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class FrameSampler:
    """Which decoded frames to keep: one in ``every``, at most ``fps`` per second of video."""

    every: int = 1
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be 1 or more")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be positive")


class _FpsGate:
    """Time-based sampling: keep a frame when it is at least 1/fps after the last one kept."""

    def __init__(self, fps: float | None) -> None:
        self._step = None if fps is None else 1.0 / fps
        self._next = 0.0

    def keep(self, time: float) -> bool:
        if self._step is None:
            return True
        # a small tolerance so that 25 fps sampled at 5 fps keeps exactly every 5th frame
        if time + 1e-6 < self._next:
            return False
        self._next = max(self._next + self._step, time + self._step / 2)
        return True


class VideoReader:
    """Iterate the frames of one source; use as a context manager (or call :meth:`close`).

    Args:
        source: path, folder or glob of images, webcam index, or URL.
        every: keep one decoded frame in ``every`` (by source frame index).
        fps: keep at most this many frames per second of video time.
        start, end: seconds of video time to read (``end`` inclusive); a file
            started :data:`SEEK_MIN_START` seconds or more in is seeked.
        queue_size: frames buffered between a live source's decoder thread
            and the consumer.
        policy: ``"drop"`` or ``"block"`` when that buffer is full (see the
            module docstring for the defaults).
        sequence_fps: frame rate given to an image sequence.
        max_pixels: frames larger than this (width x height) are refused (default:
            ``$FACELENS_MAX_PIXELS`` as the reader is made, else 64 MP).

    Attributes:
        info: what the container says (size, frame rate, audio, ...).
        problems: non-fatal issues met so far, in words (skipped images,
            a truncated file, frames dropped by a live source).
        complete: False when decoding stopped before the end of the source, or an image
            of a sequence could not be read.
        decoded: frames decoded so far (before sampling).
        dropped: frames a live source dropped because the consumer was slow.
    """

    def __init__(
        self,
        source: VideoSource,
        *,
        every: int = 1,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        policy: DropPolicy | None = None,
        sequence_fps: float = float(DEFAULT_SEQUENCE_FPS),
        max_pixels: int | None = None,
    ) -> None:
        self.sampler = FrameSampler(every, fps)
        self.start = start or 0.0
        self.end = end
        self.problems: list[str] = []
        self.complete = True
        self.decoded = 0
        self.dropped = 0
        self._max_pixels = settings.max_pixels() if max_pixels is None else max_pixels
        self._queue_size = max(1, queue_size)
        self._container: Any = None
        self._files: list[Path] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._iterated = False
        self.label = _label(source)
        kind = _kind_of(source)
        self.policy: DropPolicy = policy or ("block" if _is_http(source) else "drop")
        if kind == "sequence":
            self.info = self._open_sequence(source, Fraction(sequence_fps).limit_denominator(1001))
        else:
            self.info = self._open_container(source, kind)

    # -- opening -----------------------------------------------------------------------------

    def _open_sequence(self, source: VideoSource, rate: Fraction) -> VideoInfo:
        self._files = _sequence_files(str(source))
        if not self._files:
            raise VideoOpenError(f"{self.label}: no image files found for this image sequence")
        first = None
        for path in self._files:
            try:
                first = load_image(path, max_pixels=self._max_pixels)
                break
            except FaceLensError:
                continue
        if first is None:
            raise VideoOpenError(f"{self.label}: none of the {len(self._files)} images can be read")
        count = len(self._files)
        return VideoInfo(
            self.label,
            "sequence",
            first.width,
            first.height,
            rate,
            count,
            float(count / rate),
            None,
            False,
        )

    def _open_container(self, source: VideoSource, kind: str) -> VideoInfo:
        target, options, fmt = _container_target(source, kind)
        if kind == "file" and not Path(target).exists():
            raise VideoOpenError(f"{self.label}: no such file")
        if kind == "file" and Path(target).is_file() and Path(target).stat().st_size == 0:
            raise VideoOpenError(f"{self.label}: the file is empty (0 bytes)")
        try:
            container = av.open(
                target,
                format=fmt,
                options=options,
                timeout=NETWORK_TIMEOUT if kind != "file" else None,
            )
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoOpenError(
                f"{self.label}: cannot open as a video ({_reason(error)})"
            ) from error
        if not container.streams.video:
            container.close()
            raise VideoOpenError(f"{self.label}: holds no video stream")
        if kind == "file" and _still_image(container):
            container.close()
            raise VideoOpenError(f"{self.label}: {STILL_IMAGE}")
        self._container = container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: the decoder uses both cores
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        self._time_origin = (
            float(stream.start_time * stream.time_base)
            if stream.start_time is not None and stream.time_base is not None
            else None
        )
        width, height = stream.codec_context.width, stream.codec_context.height
        self._rotation = 0
        if kind == "file":
            self._rotation, first_time = _peek_first_frame(container, stream)
            if first_time is not None:
                # frame time 0 is the first frame shown (AVI's H.264 starts a frame late)
                self._time_origin = first_time
        if self._rotation % 180:
            width, height = height, width
        if width * height > self._max_pixels:
            container.close()
            self._container = None
            raise VideoOpenError(
                f"{self.label}: frames of {width}x{height} exceed the limit of "
                f"{self._max_pixels:,} pixels (FACELENS_MAX_PIXELS)"
            )
        return VideoInfo(
            self.label,
            kind,
            width,
            height,
            Fraction(rate),
            stream.frames or None,
            duration,
            stream.codec_context.name,
            audio is not None,
            audio.codec_context.name if audio is not None else None,
            audio.codec_context.sample_rate if audio is not None else None,
            self._rotation,
        )

    @property
    def time_origin(self) -> float:
        """Seconds of the container's timeline that frame time 0.0 stands for."""
        return getattr(self, "_time_origin", None) or 0.0

    # -- reading -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[VideoFrame]:
        for frame in self._frames(yuv=False):
            assert isinstance(frame, VideoFrame)
            yield frame

    def yuv_frames(self) -> Iterator[YuvFrame]:
        """The frames as planar YUV 4:2:0 (:class:`YuvFrame`), without converting to RGB.

        For video code that converts only some frames (anonymization searches
        one frame in N and hides patches): decoders of H.264, HEVC, VP9 and
        AV1 produce this layout, so it costs a copy; other layouts are
        converted by FFmpeg, turned frames through RGB. Needs an even width and
        height (``ValueError`` otherwise). Sampling, time window, truncation and
        live sources behave as when iterating the reader.
        """
        if self.info.width % 2 or self.info.height % 2:
            raise ValueError(
                f"{self.label}: YUV 4:2:0 frames need an even width and height, "
                f"not {self.info.width}x{self.info.height}"
            )
        for frame in self._frames(yuv=True):
            assert isinstance(frame, YuvFrame)
            yield frame

    def _frames(self, yuv: bool) -> Iterator[VideoFrame | YuvFrame]:
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated once; open the source again")
        self._iterated = True
        frames = self._sequence_frames(yuv) if self._files else self._container_frames(yuv)
        sampled = self._sampled(frames)
        if self.info.live:
            yield from self._through_queue(sampled)
        else:
            yield from sampled

    def _sampled(self, frames: Iterator[VideoFrame | YuvFrame]) -> Iterator[VideoFrame | YuvFrame]:
        gate = _FpsGate(self.sampler.fps)
        for frame in frames:
            if frame.time + 1e-9 < self.start:
                continue
            if self.end is not None and frame.time > self.end:
                break
            if frame.index % self.sampler.every != 0:
                continue
            if gate.keep(frame.time - self.start):
                yield frame

    def _sequence_frames(self, yuv: bool) -> Iterator[VideoFrame | YuvFrame]:
        rate = float(self.info.fps)
        for index, path in enumerate(self._files):
            if self._stop.is_set():
                return
            self.decoded += 1
            if index % self.sampler.every or index / rate + 1e-9 < self.start:
                continue
            try:
                image = load_image(path, max_pixels=self._max_pixels)
            except FaceLensError as error:
                self.problems.append(f"frame {index} skipped: {error}")
                self.complete = False  # read to the end, but not every frame
                continue
            if yuv:
                yield YuvFrame(rgb_to_i420(image.pixels), index, index / rate, self.label)
            else:
                yield VideoFrame(image.pixels, index, index / rate, self.label)

    def _container_frames(self, yuv: bool) -> Iterator[VideoFrame | YuvFrame]:
        container = self._container
        stream = container.streams.video[0]
        rate = float(self.info.fps) or 25.0
        origin = self._time_origin
        index = -1
        seeked = self._seek_to_start(container, stream, origin)
        try:
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                index += 1
                self.decoded += 1
                if frame.time is not None:
                    if origin is None:
                        origin = self._time_origin = float(frame.time)
                    time = float(frame.time) - origin
                    if seeked:  # frames before the seek point were not counted
                        index = round(time * rate)
                else:
                    time = index / rate
                if self.end is not None and time > self.end:
                    return
                if time + 1e-9 < self.start or index % self.sampler.every:
                    # skipped without colour conversion; it still counts as decoded
                    yield VideoFrame(_EMPTY, index, time, self.label)
                    continue
                turns = round((frame.rotation or 0) / 90) % 4
                if yuv and not turns:
                    planar = (
                        frame
                        if frame.format.name == "yuv420p"
                        else frame.reformat(format="yuv420p")
                    )
                    yield YuvFrame(planar.to_ndarray(), index, time, self.label)
                    continue
                pixels = frame.to_ndarray(format="rgb24")
                if turns:  # a display matrix (phones filming upright): show it as players do
                    pixels = np.rot90(pixels, turns)
                pixels = np.ascontiguousarray(pixels)
                if yuv:
                    yield YuvFrame(rgb_to_i420(pixels), index, time, self.label)
                else:
                    yield VideoFrame(pixels, index, time, self.label)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self.complete = False
            self.problems.append(
                f"decoding stopped after {self.decoded} frames: {_reason(error)} "
                "(truncated or corrupt source)"
            )
            return
        # The stream ran out (reaching ``end`` returns above): every frame the file declares
        # up to ``end`` should have been decoded.
        declared = self.info.frame_count or 0
        expected = declared if self.end is None else min(declared, int(self.end * rate) + 1)
        if self.info.kind == "file" and not seeked and declared and self.decoded < expected - 1:
            self.complete = False
            before_end = "" if expected == declared else f" before {self.end:g} s"
            self.problems.append(
                f"only {self.decoded} of the {expected} frames the file declares{before_end} "
                "could be decoded (truncated or corrupt file)"
            )
        elif self.info.kind == "file" and not seeked and self.decoded == 0:
            self.complete = False  # never "complete" with nothing read
            self.problems.append("no frame could be decoded")

    def _seek_to_start(self, container: Any, stream: Any, origin: float | None) -> bool:
        """Jump to the keyframe before ``start`` (files, starts after SEEK_MIN_START seconds)."""
        if self.info.kind != "file" or self.start < SEEK_MIN_START or origin is None:
            return False
        try:
            container.seek(
                int((self.start + origin) / stream.time_base), stream=stream, backward=True
            )
        except (av.error.FFmpegError, OSError, ValueError):
            return False
        return True

    def _through_queue(
        self, frames: Iterator[VideoFrame | YuvFrame]
    ) -> Iterator[VideoFrame | YuvFrame]:
        """Decode in a background thread into a bounded queue (live sources)."""
        buffer: queue.Queue[VideoFrame | YuvFrame | BaseException | None] = queue.Queue(
            self._queue_size
        )

        def produce() -> None:
            try:
                for frame in frames:
                    self._put(buffer, frame)
                    if self._stop.is_set():
                        break
            except BaseException as error:  # travels to the consumer
                self._put(buffer, error, force=True)
            self._put(buffer, None, force=True)

        self._thread = threading.Thread(target=produce, name="facelens-video-reader", daemon=True)
        self._thread.start()
        while True:
            item = buffer.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
        if self.dropped:
            self.problems.append(
                f"{self.dropped} frames dropped: processing was slower than the live source"
            )

    def _put(
        self,
        buffer: queue.Queue[VideoFrame | YuvFrame | BaseException | None],
        item: VideoFrame | YuvFrame | BaseException | None,
        force: bool = False,
    ) -> None:
        if self.policy == "block" or force:
            while not self._stop.is_set():
                try:
                    buffer.put(item, timeout=0.1)
                    return
                except queue.Full:
                    if force:
                        self._drop_oldest(buffer)
            return
        while True:
            try:
                buffer.put_nowait(item)
                return
            except queue.Full:
                self._drop_oldest(buffer)

    def _drop_oldest(
        self, buffer: queue.Queue[VideoFrame | YuvFrame | BaseException | None]
    ) -> None:
        try:
            old = buffer.get_nowait()
        except queue.Empty:
            return
        if isinstance(old, VideoFrame):
            self.dropped += 1

    def close(self) -> None:
        """Stop decoding and release the source (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=NETWORK_TIMEOUT)
            self._thread = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_EMPTY = np.zeros((0, 0, 3), np.uint8)


def open_video(source: VideoSource, **options: Any) -> VideoReader:
    """Open a video source; see :class:`VideoReader` for the options and the module docstring
    for the kinds of source. Raises :class:`VideoOpenError` when it cannot be opened."""
    return VideoReader(source, **options)


def probe_video(source: VideoSource) -> VideoInfo:
    """What the container says about a source (size, frame rate, frames, audio), without decoding."""
    with VideoReader(source) as reader:
        return reader.info


# -- helpers ---------------------------------------------------------------------------------


def _peek_first_frame(container: Any, stream: Any) -> tuple[int, float | None]:
    """The first frame's display rotation (degrees counterclockwise: 0, 90, 180 or 270) and
    its presentation time in seconds (None if unknown); the file is rewound afterwards."""
    frame = None
    with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
        frame = next(iter(container.decode(stream)), None)  # a failure shows when reading
    with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
        container.seek(0)
    if frame is None:
        return 0, None
    rotation = int(round((frame.rotation or 0) / 90) % 4 * 90)
    return rotation, None if frame.time is None else float(frame.time)


def _still_image(container: Any) -> bool:
    """Whether FFmpeg reads the file as a still image (``image2``, ``png_pipe``,
    ``jpeg_pipe``, ...): a photo, or any bytes named like one, which FFmpeg opens as a
    one-frame "video" that cannot even be rewound."""
    name = str(container.format.name)
    return name == "image2" or name.endswith("_pipe")


def _label(source: VideoSource) -> str:
    if _kind_of(source) == "webcam":
        return f"webcam {source}"
    return str(source)


def _scheme(source: VideoSource) -> str:
    if isinstance(source, int):
        return ""
    text = str(source)
    return text.split("://", 1)[0].lower() if "://" in text else ""


def _is_http(source: VideoSource) -> bool:
    return _scheme(source) in ("http", "https")


def _kind_of(source: VideoSource) -> str:
    if isinstance(source, int) or (
        isinstance(source, str) and source.isdigit() and not Path(source).exists()
    ):
        return "webcam"
    if _scheme(source) in STREAM_SCHEMES:
        return "stream"
    text = str(source)
    if Path(text).is_dir() or (_GLOB_CHARS.search(text) and not Path(text).exists()):
        return "sequence"
    return "file"


def _container_target(source: VideoSource, kind: str) -> tuple[str, dict[str, str], str | None]:
    """What to hand to ``av.open``: the target, demuxer options and input format."""
    if kind == "webcam":
        index = int(str(source))
        if sys.platform.startswith("linux"):
            return f"/dev/video{index}", {}, "v4l2"
        if sys.platform == "darwin":
            return str(index), {"framerate": "30"}, "avfoundation"
        raise VideoOpenError(
            f"webcam {index}: opening a camera by index is supported on Linux and macOS; "
            "on Windows pass the DirectShow name, e.g. 'video=Integrated Camera', as a file path"
        )
    if kind == "stream":
        scheme = _scheme(source)
        options = {"rtsp_transport": "tcp"} if scheme.startswith("rtsp") else {}
        return str(source), options, None
    return str(source), {}, None


def _sequence_files(pattern: str) -> list[Path]:
    if Path(pattern).is_dir():
        files = [p for p in Path(pattern).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        files = [Path(p) for p in glob.glob(pattern)]
    return sorted((p for p in files if p.is_file()), key=_natural_key)


def _natural_key(path: Path) -> list[object]:
    """``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _reason(error: BaseException) -> str:
    """Why FFmpeg (or the OS) failed, in its words, without its error number or the path."""
    strerror = getattr(error, "strerror", None)
    text = str(strerror if strerror else error).strip() or type(error).__name__
    return text.replace("\n", " ")
