"""One score per person: best template, or quality-weighted centroid."""

from __future__ import annotations

import numpy as np

from facelens.match.scoring import person_scores, weighted_centroids


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_max_and_centroid_aggregation() -> None:
    templates = np.stack([_unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1)])
    owners = np.array([7, 7, 9])
    qualities = np.array([1.0, 0.001, 1.0])  # person 7's second photo is nearly useless
    probe = _unit(0, 1, 0.2)[None]
    ids, best = person_scores(probe, templates, owners, qualities, "max")
    assert list(ids) == [7, 9] and best[0, 0] > 0.98  # the useless photo wins under max
    ids, centred = person_scores(probe, templates, owners, qualities, "centroid")
    assert list(ids) == [7, 9] and centred[0, 0] < 0.05  # ... but hardly counts in the centroid
    _, centroids = weighted_centroids(templates, owners, np.ones(3))
    assert np.allclose(centroids[0], _unit(1, 1, 0), atol=1e-6)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0)
