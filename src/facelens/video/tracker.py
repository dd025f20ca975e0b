"""Link the faces found in successive frames into tracks, by motion and by appearance.

:class:`FaceTracker` is online: call :meth:`FaceTracker.update` once per
processed frame with that frame's faces (from ``FacePipeline``, templates
optional), in time order; it answers which track each face belongs to, and
where the tracks that missed this frame are expected to be.

How a face is linked, in order:

1. **Motion.** Each live track predicts its box at the frame's time with a
   constant-velocity model (centre and size, velocity smoothed over the last
   observations, in pixels per second). Faces and predictions are paired
   greedily by IoU, highest first, down to ``iou_threshold``.
2. **Appearance, for what motion left over.** A track that has missed frames
   (occlusion, a missed detection, fast motion) and a face that overlaps no
   prediction are compared by template cosine, if their centres are within a
   gate that widens with the time since the track was last seen. They are
   linked when the cosine reaches ``appearance_threshold``. Templates are
   computed only here, on demand, through the ``embed`` callback (one
   embedding per new track and per candidate face, not per frame). Without
   a callback, the nearest face inside the gate is taken.
3. Faces still unmatched start new tracks.

A track that has not been seen for more than ``max_gap`` seconds ends; up to
then it keeps its id and is reported at its predicted box with ``face=None``
(:class:`TrackedFace.detected` is False), which is what anonymization needs
to cover frames where the detector blinked.

Memory stays bounded per track: each observation keeps its box, time and
quality (a few numbers); only the ``keep_best`` faces of highest quality keep
their aligned crops, for the track's identity decision.

All boxes are ``(x, y, width, height)`` in pixels of the frame; times are in
seconds.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from facelens.types import Box, Face, FloatArray
from facelens.vectors import unit_rows

__all__ = ["DEFAULT_MAX_GAP", "FaceTracker", "Observation", "Track", "TrackedFace", "iou"]

Embed = Callable[[list[Face]], list[Face]]
"""Returns the same faces with templates (e.g. a FacePipeline's embedder on their crops)."""

DEFAULT_IOU = 0.3
DEFAULT_MAX_GAP = 1.0
DEFAULT_APPEARANCE = 0.35
DEFAULT_KEEP_BEST = 5
BEST_SPACING = 0.4
"""Seconds kept between the best faces of a track, so its decision sees several moments."""
VELOCITY_SMOOTHING = 0.5
"""Weight of the newest velocity estimate in the running (exponential) average."""


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """A track's place in one frame: a detected face, or a predicted box (``face is None``)."""

    track_id: int
    frame_index: int
    time: float
    box: Box
    face: Face | None = None

    @property
    def detected(self) -> bool:
        return self.face is not None

    @property
    def quality(self) -> float:
        return self.face.quality.value if self.face is not None else 0.0


@dataclass(frozen=True)
class Observation:
    """What a track keeps of each detection: frame, time (s), box (px), detector score, quality."""

    frame_index: int
    time: float
    box: Box
    score: float
    quality: float


@dataclass(eq=False)
class Track:
    """One face followed through the video.

    ``observations`` are the frames where it was detected, in time order;
    ``best`` the ``keep_best`` detected faces of highest quality (with crops,
    and templates once embedded); ``template`` the unit mean of the templates
    computed for it so far (``None`` if none was).
    """

    id: int
    observations: list[Observation] = field(default_factory=list)
    best: list[TrackedFace] = field(default_factory=list)
    template: FloatArray | None = None
    templates_seen: int = 0
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # dcx, dcy, dw, dh per s
    predicted: Box | None = None

    @property
    def first(self) -> Observation:
        return self.observations[0]

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    @property
    def frame_indices(self) -> list[int]:
        return [o.frame_index for o in self.observations]

    @property
    def length(self) -> int:
        """Frames where the face was detected."""
        return len(self.observations)

    def predict(self, time: float) -> Box:
        """The box expected at ``time`` (s) under constant velocity from the last observation."""
        last = self.last
        dt = time - last.time
        cx, cy = last.box.center
        dcx, dcy, dw, dh = self.velocity
        width = max(1.0, last.box.width + dw * dt)
        height = max(1.0, last.box.height + dh * dt)
        return Box(cx + dcx * dt - width / 2, cy + dcy * dt - height / 2, width, height)

    def box_at(self, time: float, hold: float = 0.0) -> Box | None:
        """The box at ``time`` (s): interpolated linearly between the two observations around
        it, the nearest observation's box up to ``hold`` seconds before the first or after the
        last one, else ``None``. For offline use (anonymization, drawing) after tracking."""
        obs = self.observations
        if not obs or time < obs[0].time - hold or time > obs[-1].time + hold:
            return None
        if time <= obs[0].time:
            return obs[0].box
        if time >= obs[-1].time:
            return obs[-1].box
        times = [o.time for o in obs]
        right = int(np.searchsorted(times, time))
        a, b = obs[right - 1], obs[right]
        if b.time == a.time:
            return b.box
        w = (time - a.time) / (b.time - a.time)
        return Box(
            a.box.x + (b.box.x - a.box.x) * w,
            a.box.y + (b.box.y - a.box.y) * w,
            a.box.width + (b.box.width - a.box.width) * w,
            a.box.height + (b.box.height - a.box.height) * w,
        )

    def add_template(self, vector: FloatArray) -> None:
        """Fold one more template of this face into the track's mean template."""
        vector = np.asarray(vector, np.float32)
        if self.template is None:
            self.template = unit_rows(vector[None, :])[0]
        else:
            total = self.template * self.templates_seen + vector
            self.template = unit_rows(total[None, :])[0]
        self.templates_seen += 1

    def best_faces(self, count: int | None = None) -> list[TrackedFace]:
        """The kept faces, best quality first (ties: earlier frame first)."""
        ranked = sorted(self.best, key=_rank, reverse=True)
        return ranked if count is None else ranked[:count]

    def _observe(self, tracked: TrackedFace, keep_best: int) -> None:
        assert tracked.face is not None
        face = tracked.face
        if self.observations:
            self._update_velocity(tracked)
        self.observations.append(
            Observation(tracked.frame_index, tracked.time, tracked.box, face.score, tracked.quality)
        )
        if face.template is not None:
            self.add_template(face.template.vector)
        self._keep(tracked, keep_best)

    def _keep(self, tracked: TrackedFace, keep_best: int) -> None:
        """Keep the ``keep_best`` best faces (with crops), spread in time: once full, a face
        closer than :data:`BEST_SPACING` seconds to kept ones can only replace the worst of
        those, so that the decision sees several moments of the track."""
        if len(self.best) < keep_best:
            self.best.append(tracked)
            return
        near = [t for t in self.best if abs(t.time - tracked.time) < BEST_SPACING]
        worst = min(near or self.best, key=_rank)
        if _rank(tracked) > _rank(worst):
            self.best[self.best.index(worst)] = tracked

    def _update_velocity(self, tracked: TrackedFace) -> None:
        last = self.last
        dt = tracked.time - last.time
        if dt <= 0:
            return
        (cx0, cy0), (cx1, cy1) = last.box.center, tracked.box.center
        new = (
            (cx1 - cx0) / dt,
            (cy1 - cy0) / dt,
            (tracked.box.width - last.box.width) / dt,
            (tracked.box.height - last.box.height) / dt,
        )
        a = VELOCITY_SMOOTHING if len(self.observations) > 1 else 1.0
        self.velocity = tuple(a * n + (1 - a) * o for n, o in zip(new, self.velocity, strict=True))  # type: ignore[assignment]


class FaceTracker:
    """Online multi-face tracker (see the module docstring for how faces are linked).

    Args:
        iou_threshold: least IoU between a face and a track's predicted box to
            link them by motion alone.
        max_gap: seconds a track may go unseen and still continue with the
            same id.
        appearance_threshold: least template cosine to re-link a face to a
            track that motion could not link. The default suits SFace (its
            threshold at a false-match rate of 1e-2 is 0.30); for another
            embedder take its calibration's ``threshold_for(1e-2)``, as
            ``identify_video`` does (dlib's is 0.91).
        keep_best: detected faces kept per track (with crops), best quality first.
        embed: computes templates of faces on demand (optional, see above).
    """

    def __init__(
        self,
        *,
        iou_threshold: float = DEFAULT_IOU,
        max_gap: float = DEFAULT_MAX_GAP,
        appearance_threshold: float = DEFAULT_APPEARANCE,
        keep_best: int = DEFAULT_KEEP_BEST,
        embed: Embed | None = None,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.appearance_threshold = appearance_threshold
        self.keep_best = keep_best
        self.embed = embed
        self._ids = itertools.count(1)
        self._live: list[Track] = []
        self._ended: list[Track] = []
        self.embedded = 0  # faces embedded on the tracker's request
        self.relinked = 0  # faces linked by appearance/gate after a miss

    @property
    def live_tracks(self) -> list[Track]:
        return list(self._live)

    def update(self, frame_index: int, time: float, faces: Sequence[Face]) -> list[TrackedFace]:
        """Link one frame's faces (``time`` in seconds, increasing) to tracks.

        Returns one entry per live track: its face in this frame, or its
        predicted box (``face=None``) if it was not found but is not yet lost.
        """
        self._end_stale(time)
        for track in self._live:
            track.predicted = track.predict(time)
        faces = list(faces)
        pairs = self._match_by_motion(faces)
        unmatched_faces = [i for i in range(len(faces)) if i not in pairs]
        unmatched_tracks = [t for t in self._live if t not in pairs.values()]
        if unmatched_faces and unmatched_tracks:
            extra, faces = self._match_by_appearance(faces, unmatched_faces, unmatched_tracks)
            pairs.update(extra)
            self.relinked += len(extra)
        output: list[TrackedFace] = []
        for index, face in enumerate(faces):
            paired = pairs.get(index)
            if paired is None:
                track = Track(next(self._ids))
                self._live.append(track)
                face = self._with_template(face)
            else:
                track = paired
            tracked = TrackedFace(track.id, frame_index, time, face.box, face)
            track._observe(tracked, self.keep_best)
            output.append(tracked)
        matched = set(map(id, pairs.values()))
        for track in self._live:
            if id(track) not in matched and track.last.time < time and track.predicted is not None:
                output.append(TrackedFace(track.id, frame_index, time, track.predicted))
        return sorted(output, key=lambda t: t.track_id)

    def pop_ended(self) -> list[Track]:
        """Tracks that ended (unseen for more than ``max_gap``) and were not popped before.

        They are handed over and forgotten: a long video can be processed with
        memory for its live tracks only. :meth:`finish` no longer returns them.
        """
        ended, self._ended = self._ended, []
        return sorted(ended, key=lambda t: t.id)

    def finish(self) -> list[Track]:
        """Every track not popped yet, ended and live, in order of id (after the last frame)."""
        self._ended.extend(self._live)
        self._live = []
        return sorted(self._ended, key=lambda t: t.id)

    # -- association -----------------------------------------------------------------------

    def _end_stale(self, time: float) -> None:
        stale = [t for t in self._live if time - t.last.time > self.max_gap]
        for track in stale:
            self._live.remove(track)
            self._ended.append(track)

    def _match_by_motion(self, faces: list[Face]) -> dict[int, Track]:
        candidates = []
        for ti, track in enumerate(self._live):
            assert track.predicted is not None
            for fi, face in enumerate(faces):
                overlap = iou(track.predicted, face.box)
                if overlap >= self.iou_threshold:
                    candidates.append((overlap, fi, ti))
        return {fi: self._live[ti] for fi, ti in _greedy(candidates)}

    def _match_by_appearance(
        self, faces: list[Face], face_indices: list[int], tracks: list[Track]
    ) -> tuple[dict[int, Track], list[Face]]:
        gated = [
            (fi, ti)
            for ti, track in enumerate(tracks)
            for fi in face_indices
            if _within_gate(track, faces[fi].box)
        ]
        if not gated:
            return {}, faces
        if self.embed is None:
            candidates = [
                (
                    -_centre_distance(tracks[ti].predicted or tracks[ti].last.box, faces[fi].box),
                    fi,
                    ti,
                )
                for fi, ti in gated
            ]
            return {fi: tracks[ti] for fi, ti in _greedy(candidates)}, faces
        need = sorted({fi for fi, _ in gated if faces[fi].template is None})
        if need:
            embedded = self.embed([faces[i] for i in need])
            self.embedded += len(need)
            faces = list(faces)
            for i, face in zip(need, embedded, strict=True):
                faces[i] = face
        candidates = []
        for fi, ti in gated:
            track, template = tracks[ti], faces[fi].template
            if track.template is None or template is None:
                continue
            similarity = float(np.dot(track.template, template.vector))
            if similarity >= self.appearance_threshold:
                candidates.append((similarity, fi, ti))
        return {fi: tracks[ti] for fi, ti in _greedy(candidates)}, faces

    def _with_template(self, face: Face) -> Face:
        """A new track's first face, embedded so that the track can be recognised after a gap."""
        if self.embed is None or face.template is not None or face.aligned is None:
            return face
        self.embedded += 1
        return self.embed([face])[0]


def _rank(tracked: TrackedFace) -> tuple[float, float, int]:
    """Better faces rank higher: quality (to 0.01), then detector score, then earlier frame."""
    score = tracked.face.score if tracked.face is not None else 0.0
    return (round(tracked.quality, 2), score, -tracked.frame_index)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, in [0, 1]."""
    left, top = max(a.x, b.x), max(a.y, b.y)
    right = min(a.x + a.width, b.x + b.width)
    bottom = min(a.y + a.height, b.y + b.height)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def _centre_distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = a.center, b.center
    return float(np.hypot(ax - bx, ay - by))


def _within_gate(track: Track, box: Box) -> bool:
    """Close enough to where the track was (or is predicted) to be the same face: within
    1.5 box sizes, and a box size of a similar scale (0.5x to 2x)."""
    reference = track.predicted or track.last.box
    size = max(track.last.box.width, track.last.box.height)
    near = min(_centre_distance(reference, box), _centre_distance(track.last.box, box))
    scale = box.width / max(track.last.box.width, 1.0)
    return near <= 1.5 * size and 0.5 <= scale <= 2.0


def _greedy(candidates: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """Pairs (face, track) by descending score, each face and track used once."""
    used_faces: set[int] = set()
    used_tracks: set[int] = set()
    pairs = []
    for _, fi, ti in heapq.nlargest(len(candidates), candidates):
        if fi in used_faces or ti in used_tracks:
            continue
        used_faces.add(fi)
        used_tracks.add(ti)
        pairs.append((fi, ti))
    return pairs
