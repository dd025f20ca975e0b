"""One clustering run over the index: from faces and constraints to groups.

Two modes:

* **incremental** (every ordinary run): each existing group is kept whole and
  *frozen*; faces waiting for a group (new photos, faces marked "not this
  person") join an existing group or form new ones. Only scores that involve
  a waiting face are computed, so a run costs (new faces x all faces), not a
  re-clustering of everything. Two existing groups are never merged by a run.
* **rebuild**: everything is clustered again from the faces, keeping every
  correction: must-linked faces stay together, cannot-linked faces apart,
  and named groups are never merged with each other. Group ids are kept
  where a new group overlaps an old one most.

In both modes two faces of one photo never share a group.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelens.cluster.library_store import LibraryStore
from facelens.cluster.linkage import LinkageProblem, average_linkage
from facelens.cluster.store import FaceMatrix

__all__ = ["RegroupSummary", "regroup"]


@dataclass(frozen=True)
class RegroupSummary:
    """What a run changed: faces placed, groups created, grown and emptied."""

    faces_placed: int
    groups_created: int
    groups_grown: int
    groups_removed: int
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces_placed": self.faces_placed,
            "groups_created": self.groups_created,
            "groups_grown": self.groups_grown,
            "groups_removed": self.groups_removed,
            "threshold": round(self.threshold, 4),
        }


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def regroup(store: LibraryStore, threshold: float, *, rebuild: bool = False) -> RegroupSummary:
    """Run the clustering once (see the module docstring); the result is stored in one transaction.

    ``threshold`` is the cosine that the mean score between two groups must
    reach for them to merge (see :mod:`facelens.cluster.linkage`).
    """
    matrix = store.face_matrix()
    if len(matrix.face_ids) == 0:
        return RegroupSummary(0, 0, 0, 0, threshold)
    waiting = matrix.group_ids < 0
    if not rebuild and not waiting.any():
        return RegroupSummary(0, 0, 0, 0, threshold)
    row_of = {int(face_id): row for row, face_id in enumerate(matrix.face_ids)}
    units, frozen = _units(store, matrix, row_of, rebuild)
    cannot = [(row_of[a], row_of[b]) for a, b in store.links("cannot")]
    cannot.extend(_same_photo_pairs(matrix.photo_ids))
    problem = LinkageProblem(matrix.vectors, units, frozen, cannot)
    clusters = average_linkage(problem, threshold)
    rows_of_cluster = [[row for unit in cluster for row in units[unit]] for cluster in clusters]
    return _store_groups(store, matrix, rows_of_cluster, threshold)


def _units(
    store: LibraryStore, matrix: FaceMatrix, row_of: dict[int, int], rebuild: bool
) -> tuple[list[list[int]], list[bool]]:
    """Faces that must stay together (as row lists), and which of them are frozen."""
    count = len(matrix.face_ids)
    union = _UnionFind(count)
    for a, b in store.links("must"):
        union.union(row_of[a], row_of[b])
    named = {g.id for g in store.groups() if g.name is not None}
    if not rebuild:
        first_row: dict[int, int] = {}
        for row, group_id in enumerate(matrix.group_ids.tolist()):
            if group_id >= 0:
                union.union(first_row.setdefault(group_id, row), row)
    members: dict[int, list[int]] = defaultdict(list)
    for row in range(count):
        members[union.find(row)].append(row)
    units = list(members.values())
    if rebuild:  # only named groups are kept apart from each other
        frozen = [any(int(matrix.group_ids[r]) in named for r in unit) for unit in units]
    else:
        frozen = [any(int(matrix.group_ids[r]) >= 0 for r in unit) for unit in units]
    return units, frozen


def _same_photo_pairs(photo_ids: np.ndarray) -> list[tuple[int, int]]:
    rows_by_photo: dict[int, list[int]] = defaultdict(list)
    for row, photo_id in enumerate(photo_ids.tolist()):
        rows_by_photo[photo_id].append(row)
    return [
        (rows[i], rows[j])
        for rows in rows_by_photo.values()
        if len(rows) > 1
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
    ]


def _store_groups(
    store: LibraryStore, matrix: FaceMatrix, clusters: list[list[int]], threshold: float
) -> RegroupSummary:
    """Give every cluster a group id (the old group it overlaps most, else a new one) and save."""
    named = {g.id for g in store.groups() if g.name is not None}
    before = {g.id for g in store.groups()}
    # Named groups claim their cluster first, then the largest overlaps.
    claims = []
    for index, rows in enumerate(clusters):
        overlap = Counter(int(matrix.group_ids[r]) for r in rows if matrix.group_ids[r] >= 0)
        for group_id, shared in overlap.items():
            claims.append((group_id not in named, -shared, group_id, index))
    claims.sort()
    group_of: dict[int, int] = {}
    taken: set[int] = set()
    for _, _, group_id, index in claims:
        if index not in group_of and group_id not in taken:
            group_of[index] = group_id
            taken.add(group_id)
    placed = created = 0
    grown: set[int] = set()
    with store.write() as db:
        for index, rows in enumerate(clusters):
            if index not in group_of:
                group_of[index] = store.new_group(db)
                created += 1
            group_id = group_of[index]
            moved = [int(matrix.face_ids[r]) for r in rows if matrix.group_ids[r] != group_id]
            if moved:
                store.assign(db, group_id, moved)
                placed += len(moved)
                if group_id in before:
                    grown.add(group_id)
        store.drop_empty_groups(db)
    removed = len(before - {g.id for g in store.groups()})
    return RegroupSummary(placed, created, len(grown), removed, threshold)
