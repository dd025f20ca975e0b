"""Who appears in a video, and when: faces tracked, one identity decision per track.

:func:`identify_video` runs, in one pass over the (sampled) frames:

* detection, alignment and quality on **every** processed frame (the frames
  go through ``FaceAnalyzer.analyze_many``: chunks of frames on a worker
  thread per core), with **no embedding**;
* the :class:`~facelens.video.tracker.FaceTracker`, which embeds a face only
  when it needs appearance: the first face of a new track, and faces that
  motion could not link after a miss;
* when a track ends, its ``top_frames`` faces of highest quality are
  embedded (those not embedded yet) and decided together
  (:mod:`facelens.video.identity`); their crops are then released.

Embedding is the costliest step per face on 2 cores, so a talking-head track
of 200 frames costs about 6 embeddings instead of 200; embedding every face
(``embed_all``) is several times slower (docs/benchmarks.md#video-identify).

Frames are searched at their own size (``max_upscale=1``; photos are searched
up to 2x enlarged): video faces are rarely tiny, and enlarging every frame
would make detection four times as costly.

With ``draw_to``, a second pass decodes every frame of the same time window
(sampling or not) and writes an annotated copy: each track's box (interpolated
between detections, held ``max_gap`` seconds), its id and its decision, with
the input's size, frame rate and audio track. A live source cannot be read
twice: its copy is written during the pass, each track labelled with a
provisional decision from its best faces once it has them (or has lived one
second), without audio.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facelens.apps.draw import KNOWN, UNKNOWN
from facelens.gallery.store import TemplateMatrix
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.scoring import Aggregation
from facelens.models.fusion import embedder_parts
from facelens.pipeline.analyzer import FaceAnalyzer
from facelens.pipeline.embed import embed_face_crops
from facelens.types import Box, Face, ImageArray, Template
from facelens.video.frames import VideoFrame, VideoInfo
from facelens.video.identity import DEFAULT_TOP_FRAMES, TrackIdentity, decide_track_identity
from facelens.video.reader import VideoSource, open_video
from facelens.video.tracker import DEFAULT_MAX_GAP, FaceTracker, Track, TrackedFace
from facelens.video.writer import VideoWriter

if TYPE_CHECKING:
    from facelens.apps.video.expressions import ExpressionRecorder

MIN_TRACK_FRAMES = 2
"""Tracks detected in fewer processed frames are left out of the timeline (counted in
``short_tracks``): one-frame tracks are mostly false detections."""

VIDEO_MAX_UPSCALE = 1.0
"""Video frames are searched at their own size (see the module docstring)."""

APPEARANCE_FMR = 1e-2
"""The tracker re-links a face to a track after a miss when their templates score at least the
embedder's threshold at this false-match rate (SFace: 0.30; dlib: 0.91); the face must also
be near where the track was, so a stranger rarely qualifies."""

Progress = Callable[[int], None]
"""Called with the number of frames processed since the last call."""


@dataclass(frozen=True, eq=False)
class TrackTimeline:
    """One track of the timeline: when it was seen, and who it is."""

    track_id: int
    first_frame: int
    last_frame: int
    first_time: float  # seconds
    last_time: float  # seconds
    frames_detected: int
    decision: TrackIdentity
    segments: tuple[tuple[float, float], ...]  # (start, end) seconds of continuous presence
    detected_frames: tuple[int, ...] = ()  # frame indices where the face was detected (not in JSON)
    expressions: list[dict[str, Any]] | None = None  # smoothed expression segments, if asked for

    @property
    def identity(self) -> str | None:
        return self.decision.identity

    @property
    def label(self) -> str:
        return self.identity or f"unknown #{self.track_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "identity": self.identity,
            "first_time": round(self.first_time, 3),
            "last_time": round(self.last_time, 3),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames_detected": self.frames_detected,
            "segments": [[round(a, 3), round(b, 3)] for a, b in self.segments],
            **{k: v for k, v in self.decision.to_dict().items() if k != "identity"},
            **({} if self.expressions is None else {"expressions": self.expressions}),
        }


@dataclass(eq=False)
class VideoIdentification:
    """Everything :func:`identify_video` found in one video."""

    source: str
    info: VideoInfo
    tracks: list[TrackTimeline] = field(default_factory=list)
    frames_processed: int = 0
    frames_with_faces: int = 0
    faces_detected: int = 0
    faces_embedded: int = 0
    short_tracks: int = 0
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    threshold: float = math.nan
    fmr: float = math.nan
    calibration: str | None = None  # the calibration in force: "shipped:lfw" or "gallery:<id>"
    seconds: float = 0.0  # wall-clock time of the analysis pass
    every: int = 1
    sample_fps: float | None = None
    drawn: str | None = None

    @property
    def frames_per_second(self) -> float:
        """Processed frames per wall-clock second."""
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def people(self) -> list[str]:
        return sorted({t.identity for t in self.tracks if t.identity})

    def by_person(self) -> dict[str, dict[str, Any]]:
        """Per identified person: their tracks, first and last time and time on screen (s).

        Time on screen adds up the person's segments (overlapping tracks of one
        person are counted once)."""
        summary: dict[str, dict[str, Any]] = {}
        for name in self.people:
            tracks = [t for t in self.tracks if t.identity == name]
            spans = sorted(span for t in tracks for span in t.segments)
            on_screen, reach = 0.0, -math.inf
            for begin, finish in spans:
                on_screen += max(0.0, finish - max(begin, reach))
                reach = max(reach, finish)
            summary[name] = {
                "tracks": [t.track_id for t in tracks],
                "first_time": round(min(t.first_time for t in tracks), 3),
                "last_time": round(max(t.last_time for t in tracks), 3),
                "seconds_on_screen": round(on_screen, 3),
            }
        return summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "video": self.info.to_dict(),
            "sampling": {"every": self.every, "fps": self.sample_fps},
            "operating_point": {
                "threshold": round(self.threshold, 4),
                "fmr": self.fmr,
                "calibration": self.calibration,
            },
            "frames_processed": self.frames_processed,
            "frames_with_faces": self.frames_with_faces,
            "faces_detected": self.faces_detected,
            "faces_embedded": self.faces_embedded,
            "short_tracks_left_out": self.short_tracks,
            "complete": self.complete,
            "problems": list(self.problems),
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_per_second, 2),
            "people": self.people,
            "by_person": self.by_person(),
            "tracks": [t.to_dict() for t in self.tracks],
            "drawn": self.drawn,
        }

    def to_csv(self) -> str:
        """One row per track (the timeline), with a header."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for t in self.tracks:
            m = t.decision.match
            writer.writerow(
                [
                    t.track_id,
                    t.identity or "",
                    f"{t.first_time:.3f}",
                    f"{t.last_time:.3f}",
                    t.first_frame,
                    t.last_frame,
                    t.frames_detected,
                    "" if math.isnan(m.score) else f"{m.score:.4f}",
                    "" if m.llr is None else f"{m.llr:.3f}",
                    "" if m.score_fmr is None else f"{m.score_fmr:.3g}",
                    f"{m.threshold:.4f}",
                    f"{m.fmr:g}",
                    " ".join(str(i) for i in t.decision.frames),
                    m.candidates[0].name if m.candidates else "",
                ]
            )
        return out.getvalue()


CSV_COLUMNS = [
    "track_id",
    "identity",
    "first_time_s",
    "last_time_s",
    "first_frame",
    "last_frame",
    "frames_detected",
    "score",
    "llr",
    "score_fmr",
    "threshold",
    "fmr",
    "frames_used",
    "best_candidate",
]


def identify_video(
    source: VideoSource,
    analyzer: FaceAnalyzer,
    templates: TemplateMatrix,
    point: OperatingPoint,
    calibration: Calibration,
    *,
    every: int = 1,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    top_frames: int = DEFAULT_TOP_FRAMES,
    aggregation: Aggregation = "max",
    max_gap: float = DEFAULT_MAX_GAP,
    min_track_frames: int = MIN_TRACK_FRAMES,
    draw_to: str | Path | None = None,
    progress: Progress | None = None,
    embed_all: bool = False,
    on_track: Callable[[TrackTimeline], None] | None = None,
    expressions: bool = False,
) -> VideoIdentification:
    """Track every face of ``source`` and decide each track's identity against ``templates``.

    Raises :class:`~facelens.errors.VideoOpenError` when the source cannot be
    opened; a source that breaks off part way gives the tracks found so far,
    with ``complete=False`` and the reason in ``problems``. With a
    :class:`~facelens.api.FaceLens`, call ``lens.identify_video(source, ...)``,
    which passes its analyzer, gallery templates, operating point and
    calibration.

    ``max_gap`` (seconds a track may go unseen) is raised to 2.5 sampling
    steps when frames are sampled sparsely (``--fps 0.5`` keeps tracks alive
    across the 2 s between processed frames).

    ``on_track`` is called with each track's timeline entry as soon as the
    track ends and is decided (live monitoring). On a live source, Ctrl-C
    stops reading and returns what was found (noted in ``problems``).

    ``embed_all`` embeds every detected face instead (the tracker then has
    appearance on every frame; the decision still uses the best frames): the
    per-frame cost that the default avoids, kept for comparison
    (``benchmarks/video_identify.py``).

    ``expressions`` scores the expression of every detected face and gives
    each track its expression over time (segments of the label smoothed in a
    sliding window, :mod:`facelens.apps.video.expressions`), as ``expressions`` in
    the timeline.

    ``progress(n)`` is called with ``n=1`` after each processed frame, then,
    with ``draw_to`` (a file), after each frame drawn (every frame of the
    window): the processed frames plus the drawn frames in all.
    """
    video_analyzer = _video_analyzer(analyzer)
    embed = _Embedder(video_analyzer)
    started = clock.perf_counter()
    with (
        open_video(source, every=every, fps=fps, start=start, end=end) as reader,
        contextlib.ExitStack() as outputs,
    ):
        result = VideoIdentification(
            reader.label,
            reader.info,
            threshold=point.threshold,
            fmr=point.fmr,
            calibration=point.calibration,
            every=every,
            sample_fps=fps,
        )
        live_drawing: _LiveDrawing | None = None
        if draw_to is not None and reader.info.live:
            writer = outputs.enter_context(VideoWriter.like(draw_to, reader, audio=False))
            live_drawing = _LiveDrawing(writer, templates, point, calibration, aggregation)
        step = _frame_step(result.info, every, fps)
        max_gap = max(max_gap, 2.5 * step)
        tracker = FaceTracker(
            max_gap=max_gap,
            keep_best=top_frames,
            embed=embed,
            appearance_threshold=calibration.threshold_for(APPEARANCE_FMR),
        )
        drawn: list[Track] = []
        recorder = _expression_recorder() if expressions else None

        def settle(tracks: list[Track]) -> None:
            """Decide ended tracks as soon as they end, then let go of their crops."""
            for track in _settled(tracks, embed, top_frames):
                if track.length < min_track_frames:
                    result.short_tracks += 1
                    continue
                decision = decide_track_identity(
                    track.best_faces(top_frames),
                    templates,
                    point,
                    calibration,
                    aggregation=aggregation,
                )
                timeline = _timeline(track, decision, step, max_gap)
                if recorder is not None:
                    seen = recorder.track(track.id)
                    segments = [] if seen is None else seen.to_dict()["segments"]
                    timeline = replace(timeline, expressions=segments)
                result.tracks.append(timeline)
                track.best = [replace(t, face=_light(t.face)) for t in track.best]
                if draw_to is not None and live_drawing is None:
                    drawn.append(track)
                if on_track is not None:
                    on_track(timeline)

        try:
            for frame, faces in _detected_frames(reader, video_analyzer, embed_all):
                result.frames_processed += 1
                result.faces_detected += len(faces)
                result.frames_with_faces += bool(faces)
                tracked = tracker.update(frame.index, frame.time, faces)
                if recorder is not None:
                    recorder.observe(frame.pixels, frame.index, frame.time, tracked)
                if live_drawing is not None:
                    live_drawing.write(frame, tracked, tracker, embed, top_frames)
                settle(tracker.pop_ended())
                if progress is not None:
                    progress(1)
        except KeyboardInterrupt:
            if not reader.info.live:
                raise
            result.problems.append(f"stopped by the user after {result.frames_processed} frames")
        settle(tracker.finish())
        result.complete = reader.complete
        result.problems.extend(reader.problems)
    result.faces_embedded = embed.count + (result.faces_detected if embed_all else 0)
    result.tracks.sort(key=lambda t: (t.first_time, t.track_id))
    result.seconds = clock.perf_counter() - started
    if draw_to is not None and not result.info.live:
        draw_video(
            source,
            result,
            drawn,
            draw_to,
            start=start,
            end=end,
            max_gap=max_gap,
            progress=progress,
        )
    result.drawn = None if draw_to is None else str(draw_to)
    return result


def _expression_recorder() -> ExpressionRecorder:
    from facelens.apps.video.expressions import ExpressionRecorder  # loads the expression model

    return ExpressionRecorder()


def _video_analyzer(analyzer: FaceAnalyzer) -> FaceAnalyzer:
    """The same models and settings, searching frames at their own size."""
    return FaceAnalyzer(
        analyzer.detector,
        analyzer.embedder,
        max_side=analyzer.max_side,
        max_upscale=VIDEO_MAX_UPSCALE,
        batch_size=analyzer.batch_size,
        threads=analyzer.threads,
        max_pixels=analyzer.max_pixels,
        flip=analyzer.flip,
    )


class _Embedder:
    """Templates for faces that already carry their aligned crops (from ``embed=False``);
    counts the faces it embedded."""

    def __init__(self, analyzer: FaceAnalyzer) -> None:
        self.analyzer = analyzer
        self.count = 0

    def __call__(self, faces: list[Face]) -> list[Face]:
        if not faces:
            return []
        analyzer = self.analyzer
        parts = embedder_parts(analyzer.embedder)
        crops: list[list[ImageArray]] = [[_crop(f, i) for f in faces] for i in range(len(parts))]
        vectors = embed_face_crops(analyzer.embedder, crops, analyzer.batch_size, analyzer.flip)
        self.count += len(faces)
        model_id = analyzer.embedder.model_id
        return [
            replace(f, template=Template(v, model_id)) for f, v in zip(faces, vectors, strict=True)
        ]


def _crop(face: Face, part: int) -> ImageArray:
    crop = face.part_crops[part] if face.part_crops else face.aligned
    if crop is None:
        raise ValueError("a face needs its aligned crop to be embedded")
    return crop


def _detected_frames(
    reader: Any, analyzer: FaceAnalyzer, embed: bool = False
) -> Iterator[tuple[VideoFrame, list[Face]]]:
    """Each frame with its faces (no templates), in order; frames are analysed in parallel."""
    pending: list[VideoFrame] = []

    def images() -> Iterator[Any]:
        for frame in reader:
            pending.append(frame)
            yield frame.as_image()

    for result in analyzer.analyze_many(images(), embed=embed):
        frame = pending.pop(0)
        if result.error is not None:
            reader.problems.append(f"frame {frame.index}: {result.error}")
        yield frame, result.faces


def _settled(tracks: list[Track], embed: Callable[[list[Face]], list[Face]], k: int) -> list[Track]:
    """Ended tracks with templates on their best faces (embedded now, in one batch)."""
    missing = [
        (track, i)
        for track in tracks
        for i, t in enumerate(track.best)
        if t.face is not None and t.face.template is None
    ]
    if missing:
        faces = embed([track.best[i].face for track, i in missing])  # type: ignore[misc]
        for (track, i), face in zip(missing, faces, strict=True):
            track.best[i] = replace(track.best[i], face=face)
    return tracks


def _light(face: Face | None) -> Face | None:
    """The face without its crops (kept only for the decision)."""
    return None if face is None else replace(face, aligned=None, part_crops=())


def _frame_step(info: VideoInfo, every: int, fps: float | None) -> float:
    """Seconds between processed frames."""
    step = every / float(info.fps) if info.fps else 0.04 * every
    return max(step, 1.0 / fps) if fps else step


def _timeline(track: Track, decision: TrackIdentity, step: float, max_gap: float) -> TrackTimeline:
    segments: list[tuple[float, float]] = []
    join = max(2.5 * step, 0.25)
    for obs in track.observations:
        if segments and obs.time - segments[-1][1] <= min(join, max_gap):
            segments[-1] = (segments[-1][0], obs.time)
        else:
            segments.append((obs.time, obs.time))
    return TrackTimeline(
        track.id,
        track.first.frame_index,
        track.last.frame_index,
        track.first.time,
        track.last.time,
        track.length,
        decision,
        tuple(segments),
        tuple(track.frame_indices),
    )


# -- pictures ------------------------------------------------------------------------------


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


class _LiveDrawing:
    """The annotated copy of a live source, written as frames are processed (they cannot be
    read again): boxes of the live tracks with a provisional decision, taken once a track
    has its best faces (or has lived one second) from those faces."""

    def __init__(
        self,
        writer: VideoWriter,
        templates: TemplateMatrix,
        point: OperatingPoint,
        calibration: Calibration,
        aggregation: Aggregation,
    ) -> None:
        self.writer = writer
        self.templates, self.point, self.calibration = templates, point, calibration
        self.aggregation: Aggregation = aggregation
        self.labels: dict[int, tuple[str, bool]] = {}

    def write(
        self,
        frame: VideoFrame,
        tracked: list[TrackedFace],
        tracker: FaceTracker,
        embed: Callable[[list[Face]], list[Face]],
        top_frames: int,
    ) -> None:
        live = {t.id: t for t in tracker.live_tracks}
        boxes, labels, colours = [], [], []
        for item in tracked:
            track = live.get(item.track_id)
            if track is not None and item.track_id not in self.labels:
                ready = len(track.best) >= top_frames or frame.time - track.first.time >= 1.0
                if ready:
                    _settled([track], embed, top_frames)
                    decision = decide_track_identity(
                        track.best_faces(top_frames),
                        self.templates,
                        self.point,
                        self.calibration,
                        aggregation=self.aggregation,
                    )
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


def draw_boxes(
    image: ImageArray, boxes: list[Box], labels: list[str], colours: list[tuple[int, int, int]]
) -> ImageArray:
    """A copy of the RGB ``image`` with labelled boxes (pixels, ``(x, y, w, h)``)."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(2, round(max(image.shape[:2]) / 400))
    scale = max(0.45, max(image.shape[:2]) / 1400)
    for box, text, colour in zip(boxes, labels, colours, strict=True):
        x, y, w, h = (round(v) for v in (box.x, box.y, box.width, box.height))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y - th - base - 4)
        cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(
            canvas,
            text,
            (x + 2, top + th + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas


def timeline_png(result: VideoIdentification, target: str | Path) -> Path:
    """A timeline chart: one row per person (and per unknown track), bars where they appear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[str, list[tuple[float, float]]] = {}
    known: dict[str, bool] = {}
    for track in result.tracks:
        rows.setdefault(track.label, []).extend(track.segments)
        known[track.label] = track.identity is not None
    labels = sorted(rows, key=lambda name: (not known[name], name))
    duration = result.info.duration or max((t.last_time for t in result.tracks), default=1.0)
    minimum = max(duration / 400, 0.04)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * max(1, len(labels))), dpi=100)
    for row, name in enumerate(labels):
        spans = [(a, max(b - a, minimum)) for a, b in rows[name]]
        colour = tuple(c / 255 for c in (KNOWN if known[name] else UNKNOWN))
        ax.broken_barh(spans, (row - 0.35, 0.7), facecolors=colour)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.7, max(len(labels), 1) - 0.3)
    ax.set_xlim(0, max(duration, 0.1))
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title(f"{Path(result.source).name}: who appears when")
    ax.grid(axis="x", alpha=0.3)
    if not labels:
        ax.text(0.5, 0.5, "no face found", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return Path(target)
