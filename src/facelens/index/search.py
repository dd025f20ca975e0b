"""Top-k search over a gallery's templates: exact when small, approximate when large.

Below :data:`ANN_MIN_TEMPLATES` templates every probe is scored against every
template (one matrix product; about as fast as an index query at that size,
and exact). Above it the index (:mod:`facelens.index.codes`) proposes
:data:`CANDIDATES` templates per probe and only those are scored exactly, against the float32 templates of
the gallery, so the scores reported (and compared with the calibrated
threshold) are always exact cosines. The threshold and the candidate count
were chosen by measurement (benchmarks/million.py, docs/benchmarks.md).

Candidates are looked up in the caller's :class:`TemplateMatrix` by template
id, so an id the index still holds but the gallery no longer does (an erased
template) is dropped: it can never be returned.
"""

from __future__ import annotations

import weakref

import numpy as np

from facelens.gallery.store import TemplateMatrix
from facelens.index.base import TemplateIndex
from facelens.types import FloatArray
from facelens.vectors import cosine_scores

__all__ = [
    "ANN_MIN_TEMPLATES",
    "CANDIDATES",
    "exact_top_k",
    "ranked_people",
    "top_templates",
    "uses_index",
]

ANN_MIN_TEMPLATES = 5_000
"""Galleries with fewer templates are searched exactly. Measured (one query, one core,
128-d templates): exact 0.026 ms against 0.042 ms through the code index at 2,500
templates, 0.092 ms against 0.051 ms at 5,000, 2.0 ms against 0.27 ms at 100,000
(docs/benchmarks.md#million)."""

CANDIDATES = 128
"""Templates the index proposes per probe before exact rescoring: the smallest count
measured to find exact search's top-1 for every real probe at a million templates
(recall@1 1.000; 64 gives 0.9988; docs/benchmarks.md#million)."""


def exact_top_k(probes: FloatArray, vectors: FloatArray, k: int) -> tuple[np.ndarray, FloatArray]:
    """The ``k`` best rows of ``vectors`` for each probe, by exact cosine.

    Returns ``(rows, scores)``, both ``(P, min(k, R))``, best first.
    """
    k = min(k, len(vectors))
    scores = cosine_scores(probes, vectors)
    if k == 0:
        return np.zeros((len(probes), 0), np.int64), scores[:, :0]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64), np.take_along_axis(
        part_scores, order, axis=1
    )


_ID_ORDER: weakref.WeakKeyDictionary[TemplateMatrix, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def _id_order(matrix: TemplateMatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(order, sorted ids)`` of a matrix's template ids, computed once per matrix."""
    found = _ID_ORDER.get(matrix)
    if found is None:
        order = np.argsort(matrix.template_ids, kind="stable")
        found = (order, matrix.template_ids[order])
        _ID_ORDER[matrix] = found
    return found


def rows_of(matrix: TemplateMatrix, ids: np.ndarray) -> np.ndarray:
    """Row of each template id in ``matrix`` (same shape as ``ids``), ``-1`` where absent."""
    order, sorted_ids = _id_order(matrix)
    if len(sorted_ids) == 0:
        return np.full(ids.shape, -1, np.int64)
    position = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    found = sorted_ids[position] == ids
    return np.where(found, order[position], -1).astype(np.int64)


def uses_index(matrix: TemplateMatrix, index: TemplateIndex | None, min_templates: int) -> bool:
    """Whether a search over ``matrix`` goes through the ANN index."""
    return index is not None and len(index) > 0 and len(matrix.template_ids) >= min_templates


def top_templates(
    probes: FloatArray,
    matrix: TemplateMatrix,
    k: int,
    index: TemplateIndex | None = None,
    *,
    min_templates: int = ANN_MIN_TEMPLATES,
    candidates: int = CANDIDATES,
) -> tuple[np.ndarray, FloatArray]:
    """The ``k`` best templates of each probe: rows of ``matrix`` and their exact cosines.

    Exact below ``min_templates`` (or without an index); otherwise the index
    proposes ``max(candidates, k)`` templates per probe, erased ones are
    dropped, and the rest are scored exactly. Returns ``(rows, scores)``, both
    ``(P, k)``, best first, padded with row ``-1`` and score ``-inf``.
    """
    probes = np.atleast_2d(np.asarray(probes, np.float32))
    if not uses_index(matrix, index, min_templates):
        rows, scores = exact_top_k(probes, matrix.vectors, k)
        return _pad(rows, scores, k)
    assert index is not None
    ids, _ = index.search(probes, max(candidates, k))
    rows = rows_of(matrix, ids)
    out_rows = np.full((len(probes), k), -1, np.int64)
    out_scores = np.full((len(probes), k), -np.inf, np.float32)
    for p, (probe, probe_rows) in enumerate(zip(probes, rows, strict=True)):
        live = probe_rows[probe_rows >= 0]
        exact = matrix.vectors[live] @ probe
        order = np.argsort(-exact, kind="stable")[:k]
        out_rows[p, : len(order)] = live[order]
        out_scores[p, : len(order)] = exact[order]
    return out_rows, out_scores


def ranked_people(
    probes: FloatArray,
    matrix: TemplateMatrix,
    top_k: int,
    index: TemplateIndex | None = None,
    *,
    min_templates: int = ANN_MIN_TEMPLATES,
    candidates: int = CANDIDATES,
) -> list[list[tuple[int, float]]]:
    """For each probe, up to ``top_k`` ``(person_id, score)`` best first.

    A person's score is their best template's exact cosine (the ``max``
    aggregation of :mod:`facelens.match.scoring`), taken over the templates
    that :func:`top_templates` returns.
    """
    rows, scores = top_templates(
        probes,
        matrix,
        max(candidates, top_k),
        index,
        min_templates=min_templates,
        candidates=candidates,
    )
    ranked: list[list[tuple[int, float]]] = []
    for probe_rows, probe_scores in zip(rows, scores, strict=True):
        best: dict[int, float] = {}
        for row, score in zip(probe_rows, probe_scores, strict=True):
            if row < 0:
                continue
            person = int(matrix.person_ids[row])
            if person not in best:  # rows come best first
                best[person] = float(score)
        ranked.append(list(best.items())[:top_k])
    return ranked


def _pad(rows: np.ndarray, scores: FloatArray, k: int) -> tuple[np.ndarray, FloatArray]:
    missing = k - rows.shape[1]
    if missing <= 0:
        return rows, scores
    return (
        np.pad(rows, ((0, 0), (0, missing)), constant_values=-1),
        np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf),
    )
