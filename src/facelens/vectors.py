"""Small vector helpers shared by every stage (no dependency on any stage)."""

from __future__ import annotations

import numpy as np

from facelens.types import FloatArray

__all__ = ["cosine_scores", "unit_rows"]


def unit_rows(rows: np.ndarray) -> FloatArray:
    """Each row scaled to unit L2 norm, as float32 (an all-zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: FloatArray = (rows / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def cosine_scores(probes: FloatArray, references: FloatArray) -> FloatArray:
    """``(P, R)`` cosine similarities between unit-norm templates (rows)."""
    if len(probes) == 0 or len(references) == 0:
        return np.zeros((len(probes), len(references)), dtype=np.float32)
    scores: FloatArray = (probes @ references.T).astype(np.float32)
    return scores
