"""One identity decision per track, from its best frames.

A track's decision uses its ``k`` detected faces of highest quality (see
:meth:`facelens.video.tracker.Track.best_faces`). Each face is scored against
every person of the gallery (the gallery's aggregation: best template by
default), and a person's **track score is the mean of their scores over those
frames**. The best person is the identity when that mean reaches the
operating threshold; otherwise the track is unknown.

Evidence: ``llr`` (log10 likelihood ratio) and ``score_fmr`` (fraction of
impostor comparisons scoring this high) are those of the mean score read as
one comparison, from the model's calibration. Averaging k scores narrows the
spread of impostor scores, so the single-comparison ``score_fmr`` is a
cautious (higher) estimate of the chance that a stranger's track scores this
high, when the frames' errors are not perfectly correlated.

Faces below the usable quality (:data:`facelens.types.USABLE_QUALITY`) are
left out when the track has usable ones; a track with none is scored anyway
but never identified (``reason`` says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelens.gallery.store import TemplateMatrix
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.scoring import Aggregation, person_scores
from facelens.types import USABLE_QUALITY, Candidate, Face, Match
from facelens.video.tracker import TrackedFace

__all__ = ["DEFAULT_TOP_FRAMES", "TrackIdentity", "decide_track_identity"]

DEFAULT_TOP_FRAMES = 5
"""Faces of highest quality used for a track's identity decision."""


@dataclass(frozen=True, eq=False)
class TrackIdentity:
    """The decision for one track.

    ``match`` holds identity (or ``None``), the track score (mean over the
    frames used), threshold, fmr, candidates and evidence (``llr``,
    ``score_fmr``); its ``face`` is the best-quality face. ``frames`` are the
    indices of the frames used and ``frame_scores`` each one's score for the
    best candidate; ``reason`` says why a track with a high score stays
    unknown (only low-quality faces).
    """

    match: Match
    frames: tuple[int, ...]
    frame_scores: tuple[float, ...]
    frame_qualities: tuple[float, ...]
    reason: str | None = None

    @property
    def identity(self) -> str | None:
        return self.match.identity

    def to_dict(self) -> dict[str, Any]:
        match = self.match
        return {
            "identity": match.identity,
            "score": None if math.isnan(match.score) else round(match.score, 4),
            "threshold": round(match.threshold, 4),
            "fmr": match.fmr,
            "llr": None if match.llr is None else round(match.llr, 3),
            "score_fmr": match.score_fmr,
            "calibration": match.calibration,
            "candidates": [c.to_dict() for c in match.candidates],
            "frames_used": list(self.frames),
            "frame_scores": [round(s, 4) for s in self.frame_scores],
            "frame_qualities": [round(q, 3) for q in self.frame_qualities],
            "reason": self.reason,
        }


def decide_track_identity(
    faces: list[TrackedFace],
    templates: TemplateMatrix,
    point: OperatingPoint,
    calibration: Calibration,
    *,
    top_k: int = 5,
    aggregation: Aggregation = "max",
) -> TrackIdentity:
    """The identity of a track from its best faces (each with a template), best quality first."""
    if not faces:
        raise ValueError("a track decision needs at least one face")
    usable = [f for f in faces if f.quality >= USABLE_QUALITY]
    used = usable or faces
    reason = None if usable else f"no usable face (best quality {faces[0].quality:.2f})"
    best_face: Face = used[0].face  # type: ignore[assignment]
    frames = tuple(f.frame_index for f in used)
    qualities = tuple(f.quality for f in used)
    if len(templates.vectors) == 0:
        match = Match(
            best_face,
            None,
            float("nan"),
            point.threshold,
            point.fmr,
            (),
            calibration=point.calibration,
        )
        return TrackIdentity(match, frames, (), qualities, "the gallery is empty")
    probes = np.stack([_vector(f) for f in used])
    person_ids, scores = person_scores(
        probes, templates.vectors, templates.person_ids, templates.qualities, aggregation
    )
    mean = scores.mean(axis=0)
    order = np.argsort(-mean)[:top_k]
    candidates = tuple(
        Candidate(templates.names[int(person_ids[i])], int(person_ids[i]), float(mean[i]))
        for i in order
    )
    top = candidates[0]
    identity = top.name if top.score >= point.threshold and reason is None else None
    llr = calibration.llr.llr(top.score) if calibration.llr is not None else None
    match = Match(
        best_face,
        identity,
        top.score,
        point.threshold,
        point.fmr,
        candidates,
        llr,
        calibration.score_fmr(top.score),
        point.calibration,
    )
    frame_scores = tuple(float(s) for s in scores[:, int(order[0])])
    return TrackIdentity(match, frames, frame_scores, qualities, reason)


def _vector(tracked: TrackedFace) -> np.ndarray:
    if tracked.face is None or tracked.face.template is None:
        raise ValueError("every face of a track decision needs a template")
    return tracked.face.template.vector
