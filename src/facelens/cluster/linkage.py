"""Constrained average-linkage clustering of face templates.

Faces start in *units*: a unit is a set of faces that must stay together (a
group a person confirmed, or a group kept from an earlier run) or a single new
face. Units are merged greedily, most similar pair first, while the **mean
cosine score over every cross pair of faces** of the two units is at least
``threshold``. Average linkage resists chaining (one look-alike pair cannot
join two people, as it would in single linkage) while tolerating the odd bad
photo of a person (which complete linkage would not).

Two units are never merged when

* any face of one is *cannot-linked* to any face of the other (two faces of
  one photo, or a person's "not this person" correction), or
* both are *frozen*: groups kept from an earlier run grow by new faces but
  are never merged with each other automatically (only a person merges them).

Only pairs of faces scoring at least ``threshold`` can start a merge (a mean
of cross scores reaches the threshold only if one of them does), so the work
is split into the connected components of that sparse graph and each
component is clustered densely on its own.

Scores are cosines of unit-norm templates (``Template.vector``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["LinkageProblem", "average_linkage"]

IntArray = npt.NDArray[np.int64]

_BLOCK_ROWS = 2048  # rows of the score matrix computed at once when finding candidate pairs


@dataclass(frozen=True)
class LinkageProblem:
    """What to cluster.

    Attributes:
        vectors: ``(N, D)`` unit-norm templates, one row per face.
        units: lists of face row indices; every face in exactly one unit.
        frozen: per unit, True when it may not merge with another frozen unit.
        cannot_link: pairs of face row indices that may never share a group.
    """

    vectors: npt.NDArray[np.float32]
    units: Sequence[Sequence[int]]
    frozen: Sequence[bool]
    cannot_link: Iterable[tuple[int, int]] = ()


def average_linkage(problem: LinkageProblem, threshold: float) -> list[list[int]]:
    """Clusters as lists of unit indices (each unit in exactly one cluster), in no set order."""
    vectors = np.asarray(problem.vectors, dtype=np.float32)
    unit_of = np.full(len(vectors), -1, dtype=np.int64)
    for unit_index, faces in enumerate(problem.units):
        unit_of[np.asarray(faces, dtype=np.int64)] = unit_index
    if (unit_of < 0).any():
        raise ValueError("every face must belong to a unit")
    unit_count = len(problem.units)
    cannot_units = {
        (int(min(unit_of[a], unit_of[b])), int(max(unit_of[a], unit_of[b])))
        for a, b in problem.cannot_link
    }
    frozen_unit = np.array([bool(f) for f in problem.frozen], dtype=bool)
    active = np.flatnonzero(~frozen_unit[unit_of]).astype(np.int64)
    rows, cols = _candidate_pairs(vectors, active, threshold)
    graph = coo_matrix(
        (np.ones(len(rows), dtype=np.int8), (unit_of[rows], unit_of[cols])),
        shape=(unit_count, unit_count),
    )
    _, component_of = connected_components(graph, directed=False)
    clusters: list[list[int]] = []
    for members in _group_indices(component_of):
        if len(members) == 1:
            clusters.append([int(members[0])])
            continue
        clusters.extend(_cluster_component(vectors, problem, members, cannot_units, threshold))
    return clusters


def _candidate_pairs(
    vectors: npt.NDArray[np.float32], active: IntArray, threshold: float
) -> tuple[IntArray, IntArray]:
    """Every pair ``(i, j)`` of an ``active`` face ``i`` and another face ``j`` scoring at
    least ``threshold`` (pairs of two frozen faces can never start a merge)."""
    found_rows, found_cols = [], []
    for start in range(0, len(active), _BLOCK_ROWS):
        rows = active[start : start + _BLOCK_ROWS]
        i, j = np.nonzero(vectors[rows] @ vectors.T >= threshold)
        i = rows[i]
        keep = i != j
        found_rows.append(i[keep])
        found_cols.append(j[keep])
    if not found_rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return (
        np.concatenate(found_rows).astype(np.int64),
        np.concatenate(found_cols).astype(np.int64),
    )


def _group_indices(labels: npt.NDArray[np.int32]) -> list[IntArray]:
    order = np.argsort(labels, kind="stable")
    boundaries = np.flatnonzero(np.diff(labels[order])) + 1
    return [part.astype(np.int64) for part in np.split(order, boundaries)]


def _unit_score_sums(unit_vectors: list[npt.NDArray[np.float32]], frozen: np.ndarray) -> np.ndarray:
    """Sum of the cross scores of every two units (float64), except between two frozen units
    (left 0: they may never merge, so it is never read)."""
    count = len(unit_vectors)
    stacked = np.concatenate(unit_vectors).astype(np.float64)
    owner = np.repeat(np.arange(count), [len(v) for v in unit_vectors])
    membership = np.zeros((len(stacked), count))
    membership[np.arange(len(stacked)), owner] = 1.0
    free = np.flatnonzero(~frozen)
    free_faces = np.flatnonzero(~frozen[owner])
    # Faces of free units against every face, summed per unit on both sides.
    partial = membership[free_faces].T @ ((stacked[free_faces] @ stacked.T) @ membership)
    sums = np.zeros((count, count))
    sums[free, :] = partial[free, :]
    sums[:, free] = partial[free, :].T
    return sums


def _cluster_component(
    vectors: npt.NDArray[np.float32],
    problem: LinkageProblem,
    members: IntArray,
    cannot_units: set[tuple[int, int]],
    threshold: float,
) -> list[list[int]]:
    """Dense greedy average linkage over the units ``members`` of one component."""
    count = len(members)
    local = {int(u): k for k, u in enumerate(members)}
    unit_vectors = [vectors[np.asarray(problem.units[u], dtype=np.int64)] for u in members]
    sizes = np.array([len(v) for v in unit_vectors], dtype=np.float64)
    frozen = np.array([bool(problem.frozen[u]) for u in members])
    sums = _unit_score_sums(unit_vectors, frozen)
    forbidden = np.eye(count, dtype=bool) | (frozen[:, None] & frozen[None, :])
    for a, b in cannot_units:
        if a in local and b in local:
            forbidden[local[a], local[b]] = forbidden[local[b], local[a]] = True
    means = np.where(forbidden, -np.inf, sums / np.outer(sizes, sizes))
    alive = np.ones(count, dtype=bool)
    groups: list[list[int]] = [[int(u)] for u in members]
    best_col = means.argmax(axis=1)
    row_best = means[np.arange(count), best_col]
    while True:
        i = int(np.argmax(row_best))
        if row_best[i] < threshold:
            break
        j = int(best_col[i])
        # Merge unit j into unit i.
        groups[i].extend(groups[j])
        groups[j] = []
        alive[j] = False
        sums[i, :] += sums[j, :]
        sums[:, i] = sums[i, :]
        sizes[i] += sizes[j]
        forbidden[i, :] |= forbidden[j, :]
        frozen[i] = frozen[i] or frozen[j]
        if frozen[i]:
            forbidden[i, :] |= frozen
        forbidden[i, :] |= ~alive
        forbidden[i, i] = True
        forbidden[:, i] = forbidden[i, :]
        means[j, :] = -np.inf
        means[:, j] = -np.inf
        row_best[j] = -np.inf
        means[i, :] = np.where(forbidden[i], -np.inf, sums[i] / (sizes[i] * sizes))
        means[:, i] = means[i, :]
        # Rows whose best partner was i or j are recomputed; the others can only gain column i.
        stale = alive & ((best_col == i) | (best_col == j))
        stale[i] = True
        for k in np.flatnonzero(stale):
            best_col[k] = int(np.argmax(means[k]))
            row_best[k] = means[k, best_col[k]]
        gain = alive & ~stale & (means[:, i] > row_best)
        best_col[gain] = i
        row_best[gain] = means[gain, i]
    return [g for g in groups if g]
