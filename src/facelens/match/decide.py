"""Decisions on faces: open-set identification (1:N) and verification (1:1), calibrated.

The match stage's last step, below every app: a face's template is scored
against the gallery (exhaustively, or through the gallery's index), and the
best person is named only when the score reaches the operating point's
threshold. Each decision carries its evidence (log10 likelihood ratio and the
impostor tail rate of the score) from the embedder's calibration.
"""

from __future__ import annotations

import numpy as np

from facelens.errors import InputError, NoFaceError
from facelens.gallery.store import TemplateMatrix
from facelens.index.gallery_index import GalleryIndex
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.scoring import Aggregation, person_scores
from facelens.types import Candidate, Face, Match, Verification

__all__ = ["identify_faces", "main_face", "score_evidence", "verify_faces"]


def identify_faces(
    faces: list[Face],
    templates: TemplateMatrix,
    point: OperatingPoint,
    calibration: Calibration,
    top_k: int = 5,
    aggregation: Aggregation = "max",
    index: GalleryIndex | None = None,
) -> list[Match]:
    """One :class:`Match` per face: the best person if their score reaches the threshold.

    ``aggregation`` says how a person's templates make one score (see
    :mod:`facelens.match.scoring`). With an ``index`` and a gallery large
    enough for it (``max`` aggregation only), the index proposes candidate
    templates and only those are scored, exactly (see :mod:`facelens.index`).
    """
    if top_k < 1:
        raise InputError(
            f"top_k is the number of candidates listed per face: at least 1, not {top_k}"
        )
    probes = np.stack([_vector(f) for f in faces]) if faces else np.zeros((0, 0), np.float32)
    if len(templates.vectors) == 0:
        return [
            Match(
                f, None, float("nan"), point.threshold, point.fmr, (), calibration=point.calibration
            )
            for f in faces
        ]
    ranked = (
        index.ranked_people(probes, templates, top_k)
        if index is not None and aggregation == "max" and faces
        else None
    )
    if ranked is not None:
        return [
            _decide(face, [(templates.names[p], p, s) for p, s in people], point, calibration)
            for face, people in zip(faces, ranked, strict=True)
        ]
    person_ids, best = person_scores(
        probes, templates.vectors, templates.person_ids, templates.qualities, aggregation
    )
    matches = []
    for face, row in zip(faces, best, strict=True):
        order = np.argsort(-row)[:top_k]
        people = [
            (templates.names[int(person_ids[i])], int(person_ids[i]), float(row[i])) for i in order
        ]
        matches.append(_decide(face, people, point, calibration))
    return matches


def _decide(
    face: Face,
    people: list[tuple[str, int, float]],
    point: OperatingPoint,
    calibration: Calibration,
) -> Match:
    """The open-set decision for one face from its ranked ``(name, person id, score)``."""
    candidates = tuple(Candidate(name, person_id, score) for name, person_id, score in people)
    top = candidates[0]
    identity = top.name if top.score >= point.threshold else None
    llr, score_fmr = score_evidence(calibration, top.score)
    return Match(
        face,
        identity,
        top.score,
        point.threshold,
        point.fmr,
        candidates,
        llr,
        score_fmr,
        point.calibration,
    )


def verify_faces(
    face_a: Face, face_b: Face, point: OperatingPoint, calibration: Calibration
) -> Verification:
    """Same person or not, for two faces' templates."""
    score = float(np.dot(_vector(face_a), _vector(face_b)))
    llr, score_fmr = score_evidence(calibration, score)
    same = score >= point.threshold
    return Verification(
        same, score, point.threshold, point.fmr, face_a, face_b, llr, score_fmr, point.calibration
    )


def score_evidence(calibration: Calibration, score: float) -> tuple[float | None, float]:
    """The log10 likelihood ratio and the impostor tail rate of a score."""
    llr = calibration.llr.llr(score) if calibration.llr is not None else None
    return llr, calibration.score_fmr(score)


def main_face(faces: list[Face], source: str) -> Face:
    """The largest face of an image (faces come largest first)."""
    if not faces:
        raise NoFaceError(f"{source}: no face found")
    return faces[0]


def _vector(face: Face) -> np.ndarray:
    if face.template is None:
        raise ValueError("the face has no template; analyze with embed=True")
    return face.template.vector
