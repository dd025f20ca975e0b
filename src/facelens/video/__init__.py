"""Video in and out, and face tracking.

Public API (stable; it only grows):

* :func:`open_video` (:class:`VideoReader`): frames of a file (MP4, MOV,
  MKV, AVI, WEBM, ...), an image sequence (folder or glob), a webcam index or
  a network URL (RTSP/RTMP/HTTP/UDP/SRT; read live through a bounded queue),
  with sampling (``every=N``, ``fps=F``) and a time window (``start``,
  ``end`` in seconds). Iterating yields :class:`VideoFrame`.
  ``reader.info`` is a :class:`VideoInfo`; ``reader.problems`` and
  ``reader.complete`` report truncation, skipped images and dropped frames.
  :func:`probe_video` reads only the container's description.
* :class:`VideoFrame`: ``pixels`` ``(H, W, 3)`` uint8 **RGB**, ``index``
  (frame number in the source, before sampling), ``time`` (seconds from the
  first frame); ``as_image()`` hands it to ``FacePipeline``.
* :class:`YuvFrame`: the same frame as planar YUV 4:2:0 (``reader.yuv_frames()``),
  for loops that convert to RGB only the frames they search; the writer
  encodes it as it is.
* :class:`VideoWriter`: encodes RGB or YUV frames (H.264; VP9 for ``.webm``) at a
  size and frame rate, and copies the audio track of ``audio_from`` packet
  by packet. ``VideoWriter.like(path, reader)`` keeps the reader's size,
  frame rate and audio.
* :class:`FaceTracker`: ``update(frame_index, time, faces)`` links each
  frame's faces into tracks (IoU on constant-velocity predictions, then
  template cosine after a miss) and returns :class:`TrackedFace` per live
  track (a predicted box with ``face=None`` while a track is unseen, up to
  ``max_gap`` seconds); ``finish()`` returns every :class:`Track`, whose
  ``box_at(time, hold)`` interpolates its box between detections and whose
  ``best_faces(k)`` are its highest-quality faces (with crops).

Errors are :class:`facelens.errors.VideoError` subclasses
(:class:`~facelens.errors.VideoOpenError`,
:class:`~facelens.errors.VideoDecodeError`,
:class:`~facelens.errors.VideoWriteError`).

Coordinates are ``(x, y)`` pixels of the frame, boxes ``(x, y, width,
height)``, times in seconds.
"""

from facelens.video.frames import VideoFrame, VideoInfo, YuvFrame
from facelens.video.reader import (
    DropPolicy,
    FrameSampler,
    VideoReader,
    VideoSource,
    open_video,
    probe_video,
)
from facelens.video.tracker import FaceTracker, Observation, Track, TrackedFace, iou
from facelens.video.writer import VideoWriter

__all__ = [
    "DropPolicy",
    "FaceTracker",
    "FrameSampler",
    "Observation",
    "Track",
    "TrackedFace",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoSource",
    "VideoWriter",
    "YuvFrame",
    "iou",
    "open_video",
    "probe_video",
]
