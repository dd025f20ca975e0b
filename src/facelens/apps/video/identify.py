"""Who appears in a video, and when: faces tracked, one identity decision per track.

:func:`identify_video` runs, in one pass over the (sampled) frames:

* detection, alignment and quality on **every** processed frame (the frames
  go through ``FacePipeline.detect_many``: chunks of frames on a worker
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
(sampling or not) and writes an annotated copy (:mod:`facelens.apps.video.annotate`):
each track's box (interpolated between detections, held ``max_gap`` seconds),
its id and its decision, with the input's size, frame rate and audio track. A
live source cannot be read twice: its copy is written during the pass, each
track labelled with a provisional decision from its best faces once it has
them (or has lived one second), without audio.
"""

from __future__ import annotations

import contextlib
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facelens.apps.video.annotate import LiveDrawing, draw_video
from facelens.apps.video.results import TrackTimeline, VideoIdentification
from facelens.gallery.store import TemplateMatrix
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.scoring import Aggregation
from facelens.models.fusion import embedder_parts
from facelens.pipeline.embed import embed_face_crops
from facelens.pipeline.faces import FacePipeline
from facelens.types import Face, ImageArray, Template
from facelens.video.frames import VideoFrame, VideoInfo
from facelens.video.identity import DEFAULT_TOP_FRAMES, TrackIdentity, decide_track_identity
from facelens.video.reader import VideoSource, open_video
from facelens.video.tracker import DEFAULT_MAX_GAP, FaceTracker, Track
from facelens.video.writer import VideoWriter

if TYPE_CHECKING:
    from facelens.apps.video.expressions import ExpressionRecorder

__all__ = ["identify_video"]

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


def identify_video(
    source: VideoSource,
    pipeline: FacePipeline,
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
    which passes its pipeline, gallery templates, operating point and
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
    video_pipeline = _video_pipeline(pipeline)
    embed = _Embedder(video_pipeline)
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
        live_drawing: LiveDrawing | None = None
        if draw_to is not None and reader.info.live:
            writer = outputs.enter_context(VideoWriter.like(draw_to, reader, audio=False))

            def decide_live(track: Track) -> TrackIdentity:
                _settled([track], embed, top_frames)
                return decide_track_identity(
                    track.best_faces(top_frames),
                    templates,
                    point,
                    calibration,
                    aggregation=aggregation,
                )

            live_drawing = LiveDrawing(writer, decide_live)
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
            for frame, faces in _detected_frames(reader, video_pipeline, embed_all):
                result.frames_processed += 1
                result.faces_detected += len(faces)
                result.frames_with_faces += bool(faces)
                tracked = tracker.update(frame.index, frame.time, faces)
                if recorder is not None:
                    recorder.observe(frame.pixels, frame.index, frame.time, tracked)
                if live_drawing is not None:
                    live_drawing.write(frame, tracked, tracker, top_frames)
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


def _video_pipeline(pipeline: FacePipeline) -> FacePipeline:
    """The same models and settings, searching frames at their own size, never coarse first."""
    return FacePipeline(
        pipeline.detector,
        pipeline.embedder,
        max_side=pipeline.max_side,
        max_upscale=VIDEO_MAX_UPSCALE,
        coarse_first=False,
        batch_size=pipeline.batch_size,
        threads=pipeline.threads,
        max_pixels=pipeline.max_pixels,
        flip=pipeline.flip,
    )


class _Embedder:
    """Templates for faces that already carry their aligned crops (from ``embed=False``);
    counts the faces it embedded."""

    def __init__(self, pipeline: FacePipeline) -> None:
        self.pipeline = pipeline
        self.count = 0

    def __call__(self, faces: list[Face]) -> list[Face]:
        if not faces:
            return []
        pipeline = self.pipeline
        parts = embedder_parts(pipeline.embedder)
        crops: list[list[ImageArray]] = [[_crop(f, i) for f in faces] for i in range(len(parts))]
        vectors = embed_face_crops(pipeline.embedder, crops, pipeline.batch_size, pipeline.flip)
        self.count += len(faces)
        model_id = pipeline.embedder.model_id
        return [
            replace(f, template=Template(v, model_id)) for f, v in zip(faces, vectors, strict=True)
        ]


def _crop(face: Face, part: int) -> ImageArray:
    crop = face.part_crops[part] if face.part_crops else face.aligned
    if crop is None:
        raise ValueError("a face needs its aligned crop to be embedded")
    return crop


def _detected_frames(
    reader: Any, pipeline: FacePipeline, embed: bool = False
) -> Iterator[tuple[VideoFrame, list[Face]]]:
    """Each frame with its faces (no templates), in order; frames are analysed in parallel."""
    pending: list[VideoFrame] = []

    def images() -> Iterator[Any]:
        for frame in reader:
            pending.append(frame)
            yield frame.as_image()

    for result in pipeline.detect_many(images(), embed=embed):
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
