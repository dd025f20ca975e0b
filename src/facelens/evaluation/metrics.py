"""Verification metrics on score arrays."""

from __future__ import annotations

import numpy as np


def best_accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (decide "same" when ``score >= threshold``) with the highest accuracy.

    Candidates are the midpoints between consecutive distinct scores; ties are
    broken towards the middle of the best range.
    """
    order = np.argsort(scores)
    sorted_scores = scores[order].astype(np.float64)
    sorted_same = same[order].astype(bool)
    # Threshold just above sorted_scores[i-1] and at/below sorted_scores[i]: the first i are "different".
    correct_below = np.concatenate([[0], np.cumsum(~sorted_same)])
    correct_above = np.concatenate([np.cumsum(sorted_same[::-1])[::-1], [0]])
    accuracy = correct_below + correct_above
    candidates = np.concatenate(
        [
            [sorted_scores[0] - 1e-6],
            (sorted_scores[:-1] + sorted_scores[1:]) / 2,
            [sorted_scores[-1] + 1e-6],
        ]
    )
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(candidates[best[len(best) // 2]])


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right at ``threshold``."""
    return float(((scores >= threshold) == same.astype(bool)).mean())
