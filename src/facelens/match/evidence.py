"""Scores as evidence: a log10 likelihood ratio, fitted by logistic regression.

The likelihood ratio of a score ``s`` is ``p(s | same person) / p(s | different
people)``. A logistic regression of the same/different label on the score,
with both classes weighted equally, estimates the log odds at even prior
odds, which *is* the log likelihood ratio; it is linear in the score and so
monotone. facelens reports it in base 10 (``llr``): +2 means the score is 100
times more likely for the same person than for two different people.

Calibration quality is measured by Cllr (in bits; 0 is perfect, 1 is a
system that says nothing), on pairs not used for fitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LN10", "LogisticLLR", "cllr", "fit_balanced_logistic", "fit_logistic_llr"]

LN10 = math.log(10.0)


@dataclass(frozen=True)
class LogisticLLR:
    """``log10 LR = slope * score + intercept``."""

    slope: float
    intercept: float

    def llr(self, score: float) -> float:
        """log10 likelihood ratio of one cosine score."""
        return self.slope * score + self.intercept

    def llr_many(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(self.slope * scores + self.intercept, dtype=np.float64)


def fit_balanced_logistic(
    genuine: np.ndarray, impostor: np.ndarray, iterations: int = 50
) -> np.ndarray:
    """Natural-log logistic regression of same/different on score features, classes weighted equally.

    ``genuine`` and ``impostor`` are ``(n,)`` scores or ``(n, k)`` feature rows;
    returns ``k + 1`` coefficients, the intercept last (Newton's method).
    """
    features = np.concatenate([np.atleast_2d(genuine.T).T, np.atleast_2d(impostor.T).T]).astype(
        np.float64
    )
    design = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    weights = np.concatenate(
        [np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))]
    )
    params = np.zeros(design.shape[1])
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-np.clip(design @ params, -50, 50)))
        gradient = design.T @ (weights * (probability - labels))
        curvature = design.T @ (design * (weights * probability * (1 - probability))[:, None])
        step = np.linalg.solve(curvature + 1e-12 * np.eye(len(params)), gradient)
        params -= step
        if np.abs(step).max() < 1e-10:
            break
    return params


def fit_logistic_llr(genuine: np.ndarray, impostor: np.ndarray) -> LogisticLLR:
    """Fit the LLR line of one score (class-balanced logistic regression)."""
    slope, intercept = fit_balanced_logistic(genuine, impostor)
    return LogisticLLR(slope=float(slope / LN10), intercept=float(intercept / LN10))


def cllr(genuine_llr: np.ndarray, impostor_llr: np.ndarray) -> float:
    """The log-likelihood-ratio cost in bits (Brümmer), from log10 LRs of both classes."""
    genuine_ln = np.asarray(genuine_llr, dtype=np.float64) * LN10
    impostor_ln = np.asarray(impostor_llr, dtype=np.float64) * LN10
    genuine_cost = np.mean(np.logaddexp(0.0, -genuine_ln)) / math.log(2)
    impostor_cost = np.mean(np.logaddexp(0.0, impostor_ln)) / math.log(2)
    return float((genuine_cost + impostor_cost) / 2)
