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


def fit_logistic_llr(
    genuine: np.ndarray, impostor: np.ndarray, iterations: int = 50
) -> LogisticLLR:
    """Fit the LLR line by Newton's method on the class-balanced logistic loss."""
    scores = np.concatenate([genuine, impostor]).astype(np.float64)
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    weights = np.concatenate(
        [np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))]
    )
    design = np.stack([scores, np.ones_like(scores)], axis=1)
    params = np.zeros(2)
    for _ in range(iterations):
        logits = design @ params
        probability = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        gradient = design.T @ (weights * (probability - labels))
        curvature = design.T @ (design * (weights * probability * (1 - probability))[:, None])
        step = np.linalg.solve(curvature + 1e-12 * np.eye(2), gradient)
        params -= step
        if np.abs(step).max() < 1e-10:
            break
    return LogisticLLR(slope=float(params[0] / LN10), intercept=float(params[1] / LN10))


def cllr(genuine_llr: np.ndarray, impostor_llr: np.ndarray) -> float:
    """The log-likelihood-ratio cost in bits (Brümmer), from log10 LRs of both classes."""
    genuine_ln = np.asarray(genuine_llr, dtype=np.float64) * LN10
    impostor_ln = np.asarray(impostor_llr, dtype=np.float64) * LN10
    genuine_cost = np.mean(np.logaddexp(0.0, -genuine_ln)) / math.log(2)
    impostor_cost = np.mean(np.logaddexp(0.0, impostor_ln)) / math.log(2)
    return float((genuine_cost + impostor_cost) / 2)
