"""Comparing templates: cosine scores, and one score per person.

A person with several templates is scored in one of two ways:

* ``max`` (default): the best score over their templates;
* ``centroid``: the score against the quality-weighted mean of their
  templates (renormalised), which smooths out one bad enrollment photo.

docs/benchmarks.md compares the two.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from facelens.types import FloatArray
from facelens.vectors import cosine_scores, unit_rows

__all__ = ["Aggregation", "person_scores", "weighted_centroids"]

Aggregation = Literal["max", "centroid"]


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


def weighted_centroids(
    vectors: FloatArray, owners: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, FloatArray]:
    """Each person's quality-weighted mean template, renormalised to unit length.

    Returns the distinct person ids ``(K,)`` and their centroids ``(K, D)``.
    """
    person_ids, row = np.unique(owners, return_inverse=True)
    sums = np.zeros((len(person_ids), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, row, vectors * np.maximum(weights, 1e-3)[:, None])
    return person_ids, unit_rows(sums)


def person_scores(
    probes: FloatArray,
    vectors: FloatArray,
    owners: np.ndarray,
    qualities: np.ndarray | None = None,
    aggregation: Aggregation = "max",
) -> tuple[np.ndarray, FloatArray]:
    """Person ids ``(K,)`` and each probe's score against each person ``(P, K)``.

    ``vectors`` are the templates, ``owners`` their person ids and
    ``qualities`` their photos' quality (the weights of ``centroid``).
    """
    if aggregation == "centroid":
        weights = qualities if qualities is not None else np.ones(len(vectors))
        person_ids, centroids = weighted_centroids(vectors, owners, weights)
        return person_ids, cosine_scores(probes, centroids)
    return best_per_person(cosine_scores(probes, vectors), owners)
