"""Expression over time, per tracked face of a video.

:func:`analyze_video_expressions` reads a video (anything
:func:`facelens.video.open_video` reads: files, image sequences, webcams, URLs;
with sampling and a time window), finds the faces of every processed frame,
links them into tracks with :class:`facelens.video.FaceTracker` (by motion;
no templates are needed) and runs the expression model on each detected face.
Each track's per-frame probabilities are then smoothed in a centred sliding
window of ``window`` seconds (:mod:`facelens.analysis.smoothing`), and the
smoothed label is cut into segments: "happy from 1.2 s to 3.4 s".

Times are seconds from the first frame, frame numbers are the source's own
(before sampling). :class:`ExpressionRecorder` is the same per-track
bookkeeping for a video loop that already tracks faces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facelens.analysis.analyzer import AttributeAnalyzer
from facelens.analysis.smoothing import (
    DEFAULT_WINDOW_SECONDS,
    label_flips,
    label_runs,
    smooth_scores,
)
from facelens.models.attributes import EXPRESSIONS
from facelens.pipeline.faces import FacePipeline
from facelens.types import Face, FloatArray, ImageArray
from facelens.video.frames import VideoFrame
from facelens.video.reader import VideoSource, open_video
from facelens.video.tracker import FaceTracker, TrackedFace

__all__ = ["ExpressionRecorder", "VideoExpressions", "analyze_video_expressions"]

MIN_TRACK_FRAMES = 2
"""Tracks detected in fewer processed frames are left out (mostly false detections)."""

Progress = Callable[[int], None]
"""Called with the number of frames processed since the last call."""


@dataclass(frozen=True)
class ExpressionSegment:
    """A stretch of one track with one (smoothed) expression: ``start``/``end`` in seconds.

    ``confidence`` is the mean of the model's calibrated per-frame probability
    of ``label`` over the segment's frames (before smoothing): the share of
    such frames the model expects to be right about (its probabilities are
    temperature-scaled on a held-back split, docs/models.md). ``agreement`` is
    the share of the segment's frames whose own (unsmoothed) label is
    ``label``; ``frames`` how many detected frames the segment spans.
    """

    label: str
    start: float
    end: float
    mean_probability: float  # mean smoothed probability of ``label`` over the segment
    confidence: float
    agreement: float
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "mean_probability": round(self.mean_probability, 3),
            "confidence": round(self.confidence, 3),
            "agreement": round(self.agreement, 3),
            "frames": self.frames,
        }


@dataclass(frozen=True, eq=False)
class TrackExpressions:
    """One face track's expression over time.

    ``times`` ``(N,)`` seconds and ``frames`` ``(N,)`` frame numbers of the
    frames where the face was detected; ``scores`` ``(N, 7)`` the per-frame
    probabilities (:data:`EXPRESSIONS` order) and ``smoothed`` the same after
    the sliding window of ``window`` seconds.
    """

    track_id: int
    times: FloatArray
    frames: npt.NDArray[np.int64]
    scores: FloatArray
    smoothed: FloatArray
    window: float

    @property
    def labels(self) -> list[str]:
        """The smoothed label of each frame."""
        return [EXPRESSIONS[i] for i in self.smoothed.argmax(axis=1)]

    @property
    def raw_labels(self) -> list[str]:
        """The per-frame label before smoothing."""
        return [EXPRESSIONS[i] for i in self.scores.argmax(axis=1)]

    def segments(self) -> list[ExpressionSegment]:
        """Runs of one smoothed label, each ending where the next begins (or at the last frame)."""
        runs = label_runs(list(self.times), self.labels)
        segments = []
        for index, (label, start, last, first_row) in enumerate(runs):
            end = runs[index + 1][1] if index + 1 < len(runs) else last
            rows = slice(first_row, runs[index + 1][3] if index + 1 < len(runs) else None)
            column = EXPRESSIONS.index(label)
            raw = self.scores[rows]
            segments.append(
                ExpressionSegment(
                    label,
                    float(start),
                    float(end),
                    mean_probability=float(self.smoothed[rows, column].mean()),
                    confidence=float(raw[:, column].mean()),
                    agreement=float((raw.argmax(axis=1) == column).mean()),
                    frames=len(raw),
                )
            )
        return segments

    def to_dict(self, frames: bool = False) -> dict[str, Any]:
        """Segments and label stability; with ``frames``, every frame's raw and smoothed scores."""
        duration = float(self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0
        data: dict[str, Any] = {
            "track_id": self.track_id,
            "first_time": round(float(self.times[0]), 3),
            "last_time": round(float(self.times[-1]), 3),
            "frames_detected": len(self.times),
            "window_seconds": self.window,
            "label_flips_raw": label_flips(self.raw_labels),
            "label_flips_smoothed": label_flips(self.labels),
            "duration": round(duration, 3),
            "segments": [s.to_dict() for s in self.segments()],
        }
        if frames:
            data["frames"] = [
                {
                    "frame": int(f),
                    "time": round(float(t), 3),
                    "label": EXPRESSIONS[int(s.argmax())],
                    "scores": [round(float(v), 4) for v in raw],
                    "smoothed": [round(float(v), 4) for v in s],
                }
                for f, t, raw, s in zip(
                    self.frames, self.times, self.scores, self.smoothed, strict=True
                )
            ]
        return data


@dataclass(eq=False)
class VideoExpressions:
    """Every track's expression over time in one video."""

    source: str
    window: float
    tracks: list[TrackExpressions] = field(default_factory=list)
    frames_processed: int = 0
    short_tracks: int = 0
    complete: bool = True
    problems: list[str] = field(default_factory=list)

    def to_dict(self, frames: bool = False) -> dict[str, Any]:
        return {
            "source": self.source,
            "window_seconds": self.window,
            "frames_processed": self.frames_processed,
            "short_tracks": self.short_tracks,
            "complete": self.complete,
            "problems": list(self.problems),
            "labels": list(EXPRESSIONS),
            "tracks": [t.to_dict(frames) for t in self.tracks],
        }


@dataclass
class _Series:
    times: list[float] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    scores: list[FloatArray] = field(default_factory=list)


class ExpressionRecorder:
    """Expression scores of tracked faces, frame by frame, for any video loop.

    The hook for a pipeline that already tracks faces (e.g. the video
    identification timeline): after ``FaceTracker.update`` call
    :meth:`observe` with the frame's RGB pixels and the tracked faces; at the
    end :meth:`track` or :meth:`tracks` give each track's
    :class:`TrackExpressions`, smoothed with ``window`` seconds.
    """

    def __init__(
        self, attributes: AttributeAnalyzer | None = None, window: float = DEFAULT_WINDOW_SECONDS
    ) -> None:
        self.attributes = attributes or AttributeAnalyzer(age_gender=False)
        self.window = window
        self._series: dict[int, _Series] = {}

    def observe(
        self, pixels: ImageArray, frame_index: int, time: float, tracked: Sequence[TrackedFace]
    ) -> None:
        """Score the detected faces among ``tracked`` (predicted-only entries are skipped)."""
        detected = [(t.track_id, t.face) for t in tracked if t.face is not None]
        if not detected:
            return
        scores = self.attributes.expression_scores(pixels, [face for _, face in detected])
        for (track_id, _), row in zip(detected, scores, strict=True):
            entry = self._series.setdefault(track_id, _Series())
            entry.times.append(time)
            entry.frames.append(frame_index)
            entry.scores.append(row)

    def track(self, track_id: int) -> TrackExpressions | None:
        """The expression over time of one track (``None`` if it was never detected)."""
        entry = self._series.get(track_id)
        if entry is None:
            return None
        times = np.asarray(entry.times, dtype=np.float32)
        scores = np.stack(entry.scores).astype(np.float32)
        frames = np.asarray(entry.frames, dtype=np.int64)
        smoothed = smooth_scores(times, scores, self.window)
        return TrackExpressions(track_id, times, frames, scores, smoothed, self.window)

    def tracks(self, min_frames: int = MIN_TRACK_FRAMES) -> tuple[list[TrackExpressions], int]:
        """Every track detected in at least ``min_frames`` frames, and how many were shorter."""
        kept = [
            found
            for track_id in sorted(self._series)
            if (found := self.track(track_id)) is not None and len(found.times) >= min_frames
        ]
        return kept, len(self._series) - len(kept)


def analyze_video_expressions(
    source: VideoSource,
    pipeline: FacePipeline,
    attributes: AttributeAnalyzer | None = None,
    *,
    window: float = DEFAULT_WINDOW_SECONDS,
    every: int = 1,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    min_track_frames: int = MIN_TRACK_FRAMES,
    progress: Progress | None = None,
) -> VideoExpressions:
    """Track the faces of ``source`` and give each track's expression over time.

    ``pipeline`` finds the faces (pass one with ``max_upscale=1`` to search
    frames at their own size, as the video pipeline does); ``window`` is the
    smoothing window in seconds (0: none). Raises
    :class:`~facelens.errors.VideoOpenError` when the source cannot be opened;
    a source that breaks off part way gives what was found, ``complete=False``.
    """
    recorder = ExpressionRecorder(
        attributes or AttributeAnalyzer(age_gender=False, threads=pipeline.threads), window
    )
    tracker = FaceTracker()
    with open_video(source, every=every, fps=fps, start=start, end=end) as reader:
        result = VideoExpressions(reader.label, window)
        for frame, faces in _frames_with_faces(reader, pipeline):
            result.frames_processed += 1
            tracked = tracker.update(frame.index, frame.time, faces)
            recorder.observe(frame.pixels, frame.index, frame.time, tracked)
            if progress is not None:
                progress(1)
        result.complete = reader.complete
        result.problems.extend(reader.problems)
    result.tracks, result.short_tracks = recorder.tracks(min_track_frames)
    return result


def _frames_with_faces(
    reader: Iterable[VideoFrame], pipeline: FacePipeline
) -> Iterator[tuple[VideoFrame, list[Face]]]:
    """Each frame with its faces (no templates), in order; frames analysed in parallel."""
    pending: list[VideoFrame] = []

    def images() -> Iterator[Any]:
        for frame in reader:
            pending.append(frame)
            yield frame.as_image()

    for found in pipeline.detect_many(images(), embed=False):
        yield pending.pop(0), found.faces
