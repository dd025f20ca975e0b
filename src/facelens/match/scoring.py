"""Comparing templates: cosine scores and the best match per person."""

from __future__ import annotations

import numpy as np

from facelens.types import FloatArray


def cosine_scores(probes: FloatArray, references: FloatArray) -> FloatArray:
    """``(P, R)`` cosine similarities between unit-norm templates (rows)."""
    if len(probes) == 0 or len(references) == 0:
        return np.zeros((len(probes), len(references)), dtype=np.float32)
    scores: FloatArray = (probes @ references.T).astype(np.float32)
    return scores


def best_per_person(scores: FloatArray, owners: np.ndarray) -> tuple[np.ndarray, FloatArray]:
    """For each probe row, the best score over each person's templates.

    Args:
        scores: ``(P, R)`` probe-by-template scores.
        owners: ``(R,)`` person id of each template.

    Returns:
        ``(person_ids, best)``: the distinct person ids ``(K,)`` and the
        ``(P, K)`` best score of each probe against each person.
    """
    person_ids, column = np.unique(owners, return_inverse=True)
    best = np.full((scores.shape[0], len(person_ids)), -np.inf, dtype=np.float32)
    np.maximum.at(best.T, column, scores.T)
    return person_ids, best
