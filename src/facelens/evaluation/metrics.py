"""Verification and identification metrics on score arrays.

Scores are cosine similarities (any real numbers work); a pair is accepted as
"same" when ``score >= threshold``. Rates are fractions in ``[0, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Curve",
    "RateAt",
    "accuracy_at",
    "best_accuracy_threshold",
    "equal_error_rate",
    "error_curve",
    "rates_at",
    "roc_auc",
]


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


@dataclass(frozen=True)
class Curve:
    """An ROC / DET curve: one point per distinct threshold, thresholds decreasing.

    ``far[i]`` is the fraction of negative (impostor) scores ``>= threshold[i]``
    and ``frr[i]`` the fraction of positive (genuine) scores ``< threshold[i]``;
    the first point is ``threshold = +inf`` (nothing accepted: FAR 0, FRR 1).
    """

    threshold: np.ndarray
    far: np.ndarray
    frr: np.ndarray

    @property
    def tar(self) -> np.ndarray:
        return 1.0 - self.frr

    def sample(self, points: int = 300) -> Curve:
        """At most about ``2 * points`` points, evenly spaced on log scales of FAR and FRR."""
        if len(self.far) <= 2 * points:
            return self
        grid = np.logspace(-8, 0, points)
        picks = np.concatenate(
            [
                np.searchsorted(self.far, grid),  # far increases along the curve
                np.searchsorted(-self.frr, -grid),  # frr decreases along the curve
                [0, len(self.far) - 1],
            ]
        )
        keep = np.unique(np.clip(picks, 0, len(self.far) - 1))
        return Curve(self.threshold[keep], self.far[keep], self.frr[keep])

    def to_dict(self, points: int = 300) -> dict[str, list[float | None]]:
        """JSON form (``+inf`` as ``null``), sampled to about ``2 * points`` points."""
        sampled = self.sample(points)
        return {
            "threshold": [None if np.isinf(t) else round(float(t), 5) for t in sampled.threshold],
            "far": [float(v) for v in sampled.far],
            "frr": [float(v) for v in sampled.frr],
        }


def error_curve(positive: np.ndarray, negative: np.ndarray) -> Curve:
    """The exact ROC / DET curve of two score arrays (decide "same" when ``score >= t``)."""
    positive = np.sort(np.asarray(positive, dtype=np.float64))
    negative = np.sort(np.asarray(negative, dtype=np.float64))
    thresholds = np.unique(np.concatenate([positive, negative]))[::-1]
    accepted_positive = len(positive) - np.searchsorted(positive, thresholds, side="left")
    accepted_negative = len(negative) - np.searchsorted(negative, thresholds, side="left")
    return Curve(
        np.concatenate([[np.inf], thresholds]),
        np.concatenate([[0.0], accepted_negative / max(len(negative), 1)]),
        np.concatenate([[1.0], 1.0 - accepted_positive / max(len(positive), 1)]),
    )


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: P(positive > negative) + P(tie) / 2, exact (Mann-Whitney)."""
    negative = np.sort(np.asarray(negative, dtype=np.float64))
    positive = np.asarray(positive, dtype=np.float64)
    below = np.searchsorted(negative, positive, side="left").astype(np.int64)
    at_or_below = np.searchsorted(negative, positive, side="right").astype(np.int64)
    wins = float(below.sum()) + 0.5 * float((at_or_below - below).sum())
    return wins / (len(positive) * len(negative))


def equal_error_rate(curve: Curve) -> tuple[float, float]:
    """``(eer, threshold)``: where FAR meets FRR, linearly interpolated between curve points.

    The threshold is the first one (from the top) at which FAR >= FRR.
    """
    gap = curve.frr - curve.far  # starts at 1 (threshold +inf), decreases to <= 0
    k = int(np.argmax(gap <= 0))
    above, below = gap[k - 1], gap[k]
    weight = above / (above - below)
    eer = curve.far[k - 1] + weight * (curve.far[k] - curve.far[k - 1])
    return float(eer), float(curve.threshold[k])


@dataclass(frozen=True)
class RateAt:
    """The positive accept rate at the threshold where a given false-accept rate is reached.

    ``rate``/``threshold`` are ``None`` when ``false_rate * negatives < 1``:
    the data hold too few negative scores to measure that rate, and ``reason``
    says so.
    """

    false_rate: float
    rate: float | None
    threshold: float | None
    observed_false_rate: float | None
    negatives: int
    reason: str | None = None

    def to_dict(self, rate_name: str = "tar", false_name: str = "far") -> dict[str, Any]:
        return {
            false_name: self.false_rate,
            rate_name: self.rate,
            "threshold": None if self.threshold is None else round(self.threshold, 5),
            f"{false_name}_observed": self.observed_false_rate,
            "reason": self.reason,
        }


def rates_at(
    positive: np.ndarray,
    negative: np.ndarray,
    false_rates: tuple[float, ...],
    negatives_name: str = "impostor scores",
) -> list[RateAt]:
    """TAR at each FAR (or DIR at each FPIR) from the negative scores' upper quantiles.

    Uses the same rule as the model calibration
    (:func:`facelens.match.calibration.fit_calibration`): the smallest
    threshold that at most ``floor(far * negatives)`` negative scores reach.
    """
    from facelens.match.calibration import fit_calibration

    measured = fit_calibration(
        "evaluation", positive, negative, dataset="", command="", fmr_grid=false_rates
    )
    by_rate = dict(
        zip(measured.fmr, zip(measured.thresholds, measured.tar, strict=True), strict=True)
    )
    negative = np.asarray(negative, dtype=np.float64)
    result = []
    for false_rate in false_rates:
        if false_rate not in by_rate:
            needed = math.ceil(1 / false_rate - 1e-9)
            result.append(
                RateAt(
                    false_rate,
                    None,
                    None,
                    None,
                    len(negative),
                    f"needs at least {needed:,} {negatives_name}, have {len(negative):,}",
                )
            )
            continue
        threshold, rate = by_rate[false_rate]
        observed = float((negative >= threshold).mean())
        result.append(RateAt(false_rate, rate, threshold, observed, len(negative)))
    return result
