"""What crosses the video boundary: one decoded frame, and what is known of its source."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from facelens.io.image import DecodedImage
from facelens.io.yuv import YuvArray, i420_size, i420_to_rgb
from facelens.types import ImageArray

__all__ = ["VideoFrame", "VideoInfo", "YuvFrame"]


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded frame.

    ``pixels`` is ``(height, width, 3)`` uint8, colour order **RGB** (as every
    image in facelens). ``index`` counts the frames of the source from 0 in
    decoding order *before* sampling, so ``--every 5`` yields indices 0, 5,
    10, ... and a live stream that dropped frames shows gaps. ``time`` is in
    seconds from the first frame of the video stream (the first frame is at
    0.0), taken from the frame's presentation timestamp.
    """

    pixels: ImageArray
    index: int
    time: float
    source: str = ""

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def as_image(self) -> DecodedImage:
        """The frame as a :class:`DecodedImage` for the image pipeline (``FacePipeline``)."""
        return DecodedImage(self.pixels, f"{self.source}#{self.index}")


@dataclass(frozen=True, eq=False)
class YuvFrame:
    """One decoded frame kept as planar YUV 4:2:0, as the decoder made it.

    ``yuv`` is an I420 array ``(height * 3 // 2, width)`` uint8 (layout in
    :mod:`facelens.io.yuv`; width and height are even); ``index``, ``time``
    and ``source`` as in :class:`VideoFrame`. :meth:`VideoReader.yuv_frames`
    yields these and :class:`VideoWriter` encodes them without a colour
    conversion; :meth:`rgb` converts when a frame is to be searched for faces.
    """

    yuv: YuvArray
    index: int
    time: float
    source: str = ""

    @property
    def width(self) -> int:
        return i420_size(self.yuv)[0]

    @property
    def height(self) -> int:
        return i420_size(self.yuv)[1]

    def rgb(self) -> ImageArray:
        """The frame as RGB uint8 ``(height, width, 3)`` (a new array)."""
        return i420_to_rgb(self.yuv)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a source, before any frame is decoded.

    ``fps`` is the average frame rate of the video stream (frames per second,
    exact as a fraction when the container gives one); ``frame_count`` and
    ``duration`` (seconds) are ``None`` when unknown (live streams, some
    containers). ``width``/``height`` are in pixels, as displayed: a phone video
    whose display matrix says "turn 90 degrees" (``rotation``) gives upright
    frames, turned by the reader. ``kind`` is one of
    ``file``, ``sequence``, ``webcam``, ``stream``.
    """

    source: str
    kind: str
    width: int
    height: int
    fps: Fraction
    frame_count: int | None
    duration: float | None
    codec: str | None
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    rotation: int = 0  # degrees counterclockwise applied to the decoded frames (display matrix)

    @property
    def live(self) -> bool:
        """True for sources read as they arrive (webcam, network stream)."""
        return self.kind in ("webcam", "stream")

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "fps": round(float(self.fps), 3),
            "frame_count": self.frame_count,
            "duration": None if self.duration is None else round(self.duration, 3),
            "codec": self.codec,
            "has_audio": self.has_audio,
            "audio_codec": self.audio_codec,
            "audio_sample_rate": self.audio_sample_rate,
            "rotation": self.rotation,
        }
