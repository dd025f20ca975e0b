"""The annotated copy of a video: each track's box, id and decision drawn on every frame.

:func:`draw_video` is the second pass of
:func:`~facelens.apps.video.identify.identify_video` over a file: every frame
of the time window decoded again, boxes interpolated between detections,
with the source's size, frame rate and audio. A live source cannot be read
twice: :class:`LiveDrawing` writes its copy during the pass, without audio.
Boxes and labels are drawn by :func:`facelens.apps.draw.draw_boxes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from facelens.apps.draw import KNOWN, UNKNOWN, draw_boxes
from facelens.apps.video.results import TrackTimeline, VideoIdentification
from facelens.video.frames import VideoFrame
from facelens.video.identity import TrackIdentity
from facelens.video.reader import VideoSource, open_video
from facelens.video.tracker import DEFAULT_MAX_GAP, FaceTracker, Track, TrackedFace
from facelens.video.writer import VideoWriter

__all__ = ["LiveDrawing", "draw_video"]

Progress = Callable[[int], None]
"""Called with the number of frames written since the last call."""


def draw_video(
    source: VideoSource,
    result: VideoIdentification,
    tracks: list[Track],
    target: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    max_gap: float = DEFAULT_MAX_GAP,
    progress: Progress | None = None,
) -> Path:
    """Write an annotated copy of ``source``: every frame, each track's box, id and decision,
    with the source's size, frame rate and audio; ``progress(1)`` after each frame written."""
    decisions = {t.track_id: t for t in result.tracks}
    drawn = [t for t in tracks if t.id in decisions]
    hold = min(max_gap, 0.5)
    with (
        open_video(source, start=start, end=end) as reader,
        VideoWriter.like(target, reader) as out,
    ):
        for frame in reader:
            boxes, labels, colours = [], [], []
            for track in drawn:
                box = track.box_at(frame.time, hold=hold)
                if box is None:
                    continue
                timeline = decisions[track.id]
                boxes.append(box)
                labels.append(f"#{track.id} {_decision_label(timeline)}")
                colours.append(KNOWN if timeline.identity else UNKNOWN)
            out.write(replace(frame, pixels=draw_boxes(frame.pixels, boxes, labels, colours)))
            if progress is not None:
                progress(1)
        result.problems.extend(out.problems)
    return Path(target)


class LiveDrawing:
    """The annotated copy of a live source, written as frames are processed (they cannot be
    read again): boxes of the live tracks with a provisional decision, taken once a track
    has its best faces (or has lived one second) from those faces."""

    def __init__(self, writer: VideoWriter, decide: Callable[[Track], TrackIdentity]) -> None:
        self.writer = writer
        self.decide = decide  # a live track's provisional decision, from its best faces
        self.labels: dict[int, tuple[str, bool]] = {}

    def write(
        self,
        frame: VideoFrame,
        tracked: list[TrackedFace],
        tracker: FaceTracker,
        top_frames: int,
    ) -> None:
        live = {t.id: t for t in tracker.live_tracks}
        boxes, labels, colours = [], [], []
        for item in tracked:
            track = live.get(item.track_id)
            if track is not None and item.track_id not in self.labels:
                ready = len(track.best) >= top_frames or frame.time - track.first.time >= 1.0
                if ready:
                    decision = self.decide(track)
                    name = decision.identity or "unknown"
                    score = decision.match.score
                    text = name if math.isnan(score) else f"{name} {score:.2f}"
                    self.labels[item.track_id] = (text, decision.identity is not None)
            text, known = self.labels.get(item.track_id, ("...", False))
            boxes.append(item.box)
            labels.append(f"#{item.track_id} {text}")
            colours.append(KNOWN if known else UNKNOWN)
        self.writer.write(replace(frame, pixels=draw_boxes(frame.pixels, boxes, labels, colours)))


def _decision_label(timeline: TrackTimeline) -> str:
    match = timeline.decision.match
    if math.isnan(match.score):
        return "unknown"
    name = timeline.identity or "unknown"
    return f"{name} {match.score:.2f}"
