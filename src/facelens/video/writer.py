"""Write frames to a video file with PyAV, carrying the source's audio over untouched.

:class:`VideoWriter` encodes RGB uint8 frames (H.264 in MP4/MOV/MKV/AVI,
VP9 in WEBM) at a given size and frame rate. With ``audio_from`` it copies the
audio track of another file **packet by packet** (a remux: no decoding, no
re-encoding, the bytes are the same), interleaved with the video as frames are
written; only when the output container cannot hold the audio codec (AAC in
WEBM, PCM in MP4) is the audio re-encoded (to Opus or AAC), and ``problems``
says so.

Timing: a :class:`VideoFrame` is written at its own ``time`` (seconds from the
first frame), so a processed video stays in sync with its audio even when
frames were skipped; a plain array is written one frame period after the
previous frame. Audio timestamps are shifted by ``audio_offset`` seconds (the
source's :attr:`VideoReader.time_origin`), which keeps the original offset
between sound and picture.

:meth:`VideoWriter.like` makes a writer with the size, frame rate and audio
of an open :class:`VideoReader`: what ``--draw`` and anonymization use.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from facelens.errors import VideoOpenError, VideoWriteError
from facelens.types import ImageArray
from facelens.video.frames import VideoFrame, YuvFrame
from facelens.video.reader import VideoReader

__all__ = ["VideoWriter"]

AUDIO_LEAD = 0.5
"""Seconds of audio muxed ahead of the last video frame written (keeps the file interleaved)."""

BACKGROUND_QUEUE = 8
"""Frames waiting for a background writer's thread at most (then ``write`` waits)."""

DEFAULT_CRF = 18
"""x264 constant rate factor: 18 is visually lossless for most footage (lower = larger files)."""

_VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "30", "b": "0"}
_AUDIO_CODECS_BY_CONTAINER = {
    ".webm": ({"opus", "vorbis"}, "libopus"),
    ".mp4": ({"aac", "mp3", "opus", "alac", "ac3", "eac3", "flac"}, "aac"),
    ".m4v": ({"aac", "mp3", "alac", "ac3"}, "aac"),
}


class VideoWriter:
    """An output video of fixed size and frame rate; use as a context manager.

    Args:
        path: output file; the container comes from its extension
            (``.mp4``, ``.mov``, ``.mkv``, ``.avi``, ``.webm``).
        width, height: frame size in pixels (every frame must have it).
        fps: frames per second (a :class:`~fractions.Fraction` keeps NTSC
            rates such as 30000/1001 exact).
        audio_from: a video or audio file whose first audio track is copied
            into the output; ``None`` for no audio.
        audio_offset: seconds subtracted from the audio timestamps (the
            source's time origin; see the module docstring).
        start, end: the window of the source timeline (seconds of frame time)
            being written: frame times and audio are shifted by ``-start`` so
            the output begins at 0, and audio outside the window is left out
            (to the packet, about 20 ms). ``like`` takes them from the reader.
        crf: quality of the H.264 encoder (see :data:`DEFAULT_CRF`).
        preset: x264 speed preset (``ultrafast`` ... ``veryslow``).
        background: encode and mux in a thread of the writer's own, so that the
            caller prepares the next frames meanwhile (at most
            :data:`BACKGROUND_QUEUE` frames wait); an encoding error is raised
            by the next :meth:`write` or by :meth:`close`.

    Attributes:
        frames: video frames written.
        audio_packets: audio packets copied (or encoded, when re-encoding).
        problems: what could not be kept as it was, in words.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        fps: Fraction | float,
        audio_from: str | os.PathLike[str] | None = None,
        audio_offset: float = 0.0,
        start: float = 0.0,
        end: float | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = "veryfast",
        background: bool = False,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(25)
        self.frames = 0
        self.audio_packets = 0
        self.problems: list[str] = []
        self._last_pts = -1
        self.start, self.end = start, end
        self._audio: _AudioCopy | None = None
        self._queue: queue.Queue[Any] | None = None
        self._worker: threading.Thread | None = None
        self._background_failure: BaseException | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container: Any = av.open(str(self.path), mode="w")
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoWriteError(f"{self.path}: cannot create this video ({error})") from error
        try:
            self._stream = self._add_video_stream(crf, preset)
            if audio_from is not None:
                self._audio = _AudioCopy(self, Path(audio_from), audio_offset)
        except BaseException:
            self._container.close()
            raise
        if background:
            self._queue = queue.Queue(BACKGROUND_QUEUE)
            self._worker = threading.Thread(
                target=self._encode_queued, name="facelens-video-writer", daemon=True
            )
            self._worker.start()

    @classmethod
    def like(
        cls,
        path: str | os.PathLike[str],
        reader: VideoReader,
        *,
        audio: bool = True,
        **options: Any,
    ) -> VideoWriter:
        """A writer with the size, frame rate and (if ``audio``) audio track of ``reader``'s source."""
        info = reader.info
        audio_from = info.source if audio and info.has_audio and info.kind == "file" else None
        return cls(
            path,
            width=info.width,
            height=info.height,
            fps=info.fps,
            audio_from=audio_from,
            audio_offset=reader.time_origin,
            start=reader.start,
            end=reader.end,
            **options,
        )

    def _add_video_stream(self, crf: int, preset: str) -> Any:
        suffix = self.path.suffix.lower()
        if suffix == ".webm":
            stream = self._container.add_stream("libvpx-vp9", rate=self.rate, options=_VP9_OPTIONS)
        else:
            options = {"crf": str(crf), "preset": preset}
            if suffix == ".avi":
                options["bf"] = "0"  # AVI keeps no presentation times: no reordered B-frames
            stream = self._container.add_stream("libx264", rate=self.rate, options=options)
        stream.width, stream.height = self.width, self.height
        even = self.width % 2 == 0 and self.height % 2 == 0
        # 4:2:0 needs even sizes; an odd-sized source keeps its size in 4:4:4 instead
        stream.pix_fmt = "yuv420p" if even or suffix == ".webm" else "yuv444p"
        if suffix == ".webm" and not even:
            raise VideoWriteError(
                f"{self.path}: WEBM output needs an even width and height "
                f"(got {self.width}x{self.height}); write .mp4 or .mkv instead"
            )
        stream.time_base = 1 / self.rate
        return stream

    def write(self, frame: VideoFrame | YuvFrame | ImageArray) -> None:
        """Encode one frame of the writer's size: RGB uint8 (a :class:`VideoFrame` or an
        array) or I420 (a :class:`YuvFrame`, encoded without a colour conversion). A frame
        object is written at its own time, an array one frame period after the previous.
        The frame's pixels are copied before this returns: the caller may reuse them."""
        picture = self._picture(frame)
        pts = self._last_pts + 1
        if not isinstance(frame, np.ndarray):
            pts = max(pts, round((frame.time - self.start) * self.rate))
        self._last_pts = pts
        picture.pts = pts
        picture.time_base = 1 / self.rate  # the muxer may change the stream's own time base
        if self._queue is None:
            self._encode(picture)
            return
        self._raise_background_failure()
        self._queue.put(picture)

    def _encode(self, picture: Any) -> None:
        try:
            self._mux(self._stream.encode(picture))
            if self._audio is not None:
                self._audio.copy_until(float(picture.pts / self.rate) + AUDIO_LEAD)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoWriteError(f"{self.path}: writing failed ({error})") from error
        self.frames += 1

    def _encode_queued(self) -> None:
        """The background thread: encode what :meth:`write` queued until ``None`` comes."""
        assert self._queue is not None
        while (picture := self._queue.get()) is not None:
            if self._background_failure is not None:
                continue  # keep draining so that write() never blocks on a full queue
            try:
                self._encode(picture)
            except BaseException as error:  # raised in the caller's thread by write/close
                self._background_failure = error

    def _raise_background_failure(self) -> None:
        if self._background_failure is not None:
            raise self._background_failure

    def _picture(self, frame: VideoFrame | YuvFrame | ImageArray) -> Any:
        """The ``av.VideoFrame`` to encode, after checking the frame's size and layout."""
        if isinstance(frame, YuvFrame):
            yuv = frame.yuv
            expected = (self.height * 3 // 2, self.width)
            if yuv.shape != expected or yuv.dtype != np.uint8 or self.height % 2:
                raise VideoWriteError(
                    f"{self.path}: I420 frame of shape {yuv.shape} {yuv.dtype}, expected "
                    f"{expected} uint8"
                )
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(yuv), format="yuv420p")
            if self._stream.pix_fmt != "yuv420p":
                picture = picture.reformat(format=self._stream.pix_fmt)
            return picture
        pixels = frame.pixels if isinstance(frame, VideoFrame) else frame
        if pixels.shape != (self.height, self.width, 3) or pixels.dtype != np.uint8:
            raise VideoWriteError(
                f"{self.path}: frame of shape {pixels.shape} {pixels.dtype}, expected "
                f"({self.height}, {self.width}, 3) uint8 RGB"
            )
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio and finish the file."""
        if self._container is None:
            return
        if self._worker is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        try:
            self._raise_background_failure()
            self._mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.copy_until(None)
                self._audio.close()
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoWriteError(f"{self.path}: finishing the file failed ({error})") from error
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AudioCopy:
    """The first audio track of a source, copied into a writer's container as video goes in."""

    def __init__(self, writer: VideoWriter, source: Path, offset: float) -> None:
        self.writer = writer
        try:
            self.input: Any = av.open(str(source))
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoOpenError(f"{source}: cannot read its audio ({error})") from error
        if not self.input.streams.audio:
            self.input.close()
            raise VideoOpenError(f"{source}: holds no audio track")
        self.stream_in = self.input.streams.audio[0]
        self.offset = offset
        codec = self.stream_in.codec_context.name
        accepted, fallback = _AUDIO_CODECS_BY_CONTAINER.get(
            writer.path.suffix.lower(), (None, "aac")
        )
        self.encoder: Any = None
        if accepted is None or codec in accepted:
            self.stream_out = writer._container.add_stream_from_template(self.stream_in)
        else:
            self.encoder = _AudioEncoder(writer._container, self.stream_in, fallback)
            self.stream_out = self.encoder.stream
            writer.problems.append(
                f"audio re-encoded from {codec} to {fallback}: {writer.path.suffix} cannot hold {codec}"
            )
        self.packets: Iterator[Any] = iter(self.input.demux(self.stream_in))
        self.pending: Any = None
        self.finished = False

    def copy_until(self, until: float | None) -> None:
        """Mux the audio packets whose time (after the offset) is before ``until`` seconds
        (every remaining packet when ``until`` is None)."""
        while not self.finished:
            if self.pending is None:
                self.pending = next(self.packets, None)
                if self.pending is None:
                    self.finished = True
                    if self.encoder is not None:
                        self.writer.audio_packets += self.encoder.flush()
                    return
                if self.pending.dts is None or self.pending.size == 0:
                    self.pending = None
                    continue
            packet = self.pending
            time = (
                float(packet.pts * packet.time_base) - self.offset if packet.pts is not None else 0
            )
            start, end = self.writer.start, self.writer.end
            if until is not None and time - start > until:
                return
            self.pending = None
            if start > 0 and time < start - 1e-6:
                continue  # before the window
            if end is not None and time > end + 1 / self.writer.rate:
                self.packets = iter(())  # after the window: nothing more to copy
                continue
            if self.encoder is not None:
                self.writer.audio_packets += self.encoder.encode(packet)
                continue
            shift = round((self.offset + start) / packet.time_base)
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = self.stream_out
            self.writer._container.mux(packet)
            self.writer.audio_packets += 1

    def close(self) -> None:
        self.input.close()


class _AudioEncoder:
    """Decode audio packets and encode them with a codec the output container accepts."""

    def __init__(self, container: Any, stream_in: Any, codec: str) -> None:
        self.container = container
        rate = stream_in.codec_context.sample_rate or 48000
        if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
            rate = 48000
        self.stream = container.add_stream(codec, rate=rate)
        self.stream.layout = (
            stream_in.codec_context.layout.name if stream_in.codec_context.layout else "stereo"
        )
        self.resampler = av.AudioResampler(
            format=self.stream.codec_context.format, layout=self.stream.layout, rate=rate
        )
        self.decoder = stream_in.codec_context

    def encode(self, packet: Any) -> int:
        count = 0
        for decoded in self.decoder.decode(packet):
            decoded.pts = None
            for chunk in self.resampler.resample(decoded):
                for out in self.stream.encode(chunk):
                    self.container.mux(out)
                    count += 1
        return count

    def flush(self) -> int:
        count = 0
        for chunk in self.resampler.resample(None):
            for out in self.stream.encode(chunk):
                self.container.mux(out)
                count += 1
        for out in self.stream.encode(None):
            self.container.mux(out)
            count += 1
        return count
