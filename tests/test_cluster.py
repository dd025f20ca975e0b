"""Face clustering without photos: the linkage, its constraints, the metrics, and the index.

Templates here are made by the test (points on the unit sphere around a few
"people"); the tests with real photos are in ``test_cluster_photos.py``.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from facelens.cluster import default_index_path
from facelens.cluster.corrections import (
    merge_groups,
    move_faces,
    reject_faces,
    split_group,
)
from facelens.cluster.engine import regroup
from facelens.cluster.linkage import LinkageProblem, average_linkage
from facelens.cluster.metrics import score_clustering
from facelens.cluster.store import ClusterStore, GroupRecord, NewFace
from facelens.errors import (
    ClusterModelMismatchError,
    CorrectionError,
    GalleryKeyMismatchError,
    GalleryKeyRequiredError,
    GalleryNotEncryptedError,
    GroupNotFoundError,
)
from facelens.gallery.protection import GalleryCipher, write_key_file
from facelens.types import Box
from facelens.vectors import unit_rows


def people_templates(
    people: int, per_person: int, spread: float, seed: int = 0, dim: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors scattered around ``people`` random centres; and who each one is."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(people, dim)))
    truth = np.repeat(np.arange(people), per_person)
    vectors = unit_rows(centres[truth] + spread * rng.normal(size=(len(truth), dim)))
    return vectors.astype(np.float32), truth


def as_labels(clusters: list[list[int]], count: int) -> np.ndarray:
    labels = np.full(count, -1)
    for index, members in enumerate(clusters):
        labels[members] = index
    return labels


def singletons(count: int) -> tuple[list[list[int]], list[bool]]:
    return [[i] for i in range(count)], [False] * count


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs_a = {(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    return len(pairs_a) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("threshold", [0.2, 0.4, 0.6])
def test_average_linkage_equals_scipy_without_constraints(threshold: float) -> None:
    vectors, _ = people_templates(people=12, per_person=8, spread=0.12, seed=3)
    units, frozen = singletons(len(vectors))
    ours = as_labels(
        average_linkage(LinkageProblem(vectors, units, frozen), threshold), len(vectors)
    )
    tree = linkage(pdist(vectors.astype(np.float64), "cosine"), "average")
    reference = fcluster(tree, 1 - threshold, criterion="distance")
    assert same_partition(ours, reference)
    assert 1 < len(set(ours.tolist())) < len(vectors)  # the threshold really cut somewhere


def test_cannot_link_is_never_crossed_even_through_a_third_face() -> None:
    rng = np.random.default_rng(1)
    base = unit_rows(rng.normal(size=(1, 32)))[0]
    # Three nearly identical faces: a and c may never be together; b is free to join either.
    vectors = unit_rows(np.stack([base + 0.01 * rng.normal(size=32) for _ in range(3)]))
    units, frozen = singletons(3)
    clusters = average_linkage(
        LinkageProblem(vectors.astype(np.float32), units, frozen, [(0, 2)]), 0.5
    )
    labels = as_labels(clusters, 3)
    assert labels[0] != labels[2]
    assert labels[1] in (labels[0], labels[2])
    # Without the constraint, all three are one group.
    assert len(average_linkage(LinkageProblem(vectors.astype(np.float32), units, frozen), 0.5)) == 1


def test_frozen_units_never_merge_but_new_faces_join_them() -> None:
    vectors, _ = people_templates(people=1, per_person=5, spread=0.05)
    units = [[0, 1], [2, 3], [4]]
    clusters = average_linkage(LinkageProblem(vectors, units, [True, True, False]), 0.5)
    assert len(clusters) == 2
    assert sorted(len(c) for c in clusters) == [1, 2]  # the new face joined one frozen unit


def test_metrics_on_a_hand_counted_example() -> None:
    # Truth: A A A B ; predicted: {0,1} {2,3}
    scores = score_clustering([0, 0, 1, 1], [0, 0, 0, 1])
    assert scores.pairwise_precision == pytest.approx(1 / 2)  # pairs (0,1) ok, (2,3) wrong
    assert scores.pairwise_recall == pytest.approx(1 / 3)  # of (0,1) (0,2) (1,2)
    assert scores.bcubed_precision == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
    assert scores.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    # A person with one photo left alone is perfect in BCubed and makes no pairs.
    alone = score_clustering([0, 1], [0, 1])
    assert alone.bcubed_f == 1.0 and alone.pairwise_precision == 1.0


# --- the index, runs and corrections, on made-up templates ---------------------------------


def add_faces(
    store: ClusterStore, vectors: np.ndarray, photo_of: list[int] | None = None
) -> list[int]:
    """One photo per face (or faces sharing photos by ``photo_of``); returns face ids."""
    photo_of = photo_of or list(range(len(vectors)))
    ids: list[int] = []
    start = len(store.face_matrix().face_ids)
    for photo in dict.fromkeys(photo_of):
        rows = [i for i, p in enumerate(photo_of) if p == photo]
        ids += store.add_photo(
            f"photo-{start}-{photo}.jpg",
            f"sha-{start}-{photo}",
            100,
            100,
            [NewFace(Box(10 * i, 0, 10, 10), 0.9, vectors[i], None) for i in rows],
        )
    return ids


def groups_of(store: ClusterStore) -> dict[int, int | None]:
    return {f.id: f.group_id for f in store.faces()}


@pytest.fixture()
def store(tmp_path: Path) -> ClusterStore:
    opened = ClusterStore(tmp_path / "x.clusters.db", "test-model")
    yield opened  # type: ignore[misc]
    opened.close()


def test_index_refuses_another_model(tmp_path: Path) -> None:
    ClusterStore(tmp_path / "a.db", "model-a").close()
    with pytest.raises(ClusterModelMismatchError):
        ClusterStore(tmp_path / "a.db", "model-b")


def test_faces_of_one_photo_never_share_a_group(store: ClusterStore) -> None:
    vectors, _ = people_templates(people=1, per_person=4, spread=0.02)
    ids = add_faces(store, vectors, photo_of=[0, 0, 1, 1])
    regroup(store, threshold=0.1)
    group = groups_of(store)
    assert group[ids[0]] != group[ids[1]] and group[ids[2]] != group[ids[3]]
    assert len(set(group.values())) == 2  # but each joined a face of the other photo


def test_incremental_run_keeps_groups_and_adds_new_faces(store: ClusterStore) -> None:
    vectors, truth = people_templates(people=3, per_person=6, spread=0.1, seed=5)
    first = [i for i in range(len(vectors)) if i % 6 < 4]
    later = [i for i in range(len(vectors)) if i % 6 >= 4]
    first_ids = add_faces(store, vectors[first])
    regroup(store, 0.5)
    before = groups_of(store)
    assert len(set(before.values())) == 3
    later_ids = add_faces(store, vectors[later])
    summary = regroup(store, 0.5)
    after = groups_of(store)
    assert summary.faces_placed == len(later) and summary.groups_created == 0
    assert all(after[f] == before[f] for f in first_ids)
    for face_id, row in zip(later_ids, later, strict=True):
        same_person = [f for f, r in zip(first_ids, first, strict=True) if truth[r] == truth[row]]
        assert after[face_id] == after[same_person[0]]


def test_corrections_survive_runs_and_rebuilds(store: ClusterStore) -> None:
    vectors, _ = people_templates(people=2, per_person=5, spread=0.1, seed=7)
    ids = add_faces(store, vectors)
    regroup(store, 0.5)
    a, b = groups_of(store)[ids[0]], groups_of(store)[ids[5]]
    assert a != b
    # The look-alike case: a person says both groups are one person.
    merged = merge_groups(store, [a, b])
    # And that face 1 is someone else, and that faces 2 and 3 are another person again.
    reject_faces(store, [ids[1]])
    regroup(store, 0.5)
    new_group = split_group(store, merged, [ids[2], ids[3]])
    for rebuild in (False, True, True):
        add_faces(store, people_templates(people=2, per_person=2, spread=0.1, seed=7)[0])
        regroup(store, 0.5, rebuild=rebuild)
        group = groups_of(store)
        assert group[ids[1]] != group[ids[0]]
        assert group[ids[2]] == group[ids[3]] == new_group
        assert group[ids[0]] == group[ids[4]] == group[ids[5]] == group[ids[9]] == merged
        assert group[ids[2]] != group[ids[0]]


def test_move_and_the_latest_word_wins(store: ClusterStore) -> None:
    vectors, _ = people_templates(people=2, per_person=3, spread=0.1, seed=9)
    ids = add_faces(store, vectors)
    regroup(store, 0.5)
    a, b = groups_of(store)[ids[0]], groups_of(store)[ids[3]]
    move_faces(store, [ids[0]], b)  # a person says face 0 is the other person
    regroup(store, 0.5, rebuild=True)
    assert groups_of(store)[ids[0]] == b
    move_faces(store, [ids[0]], groups_of(store)[ids[1]])  # ... and changes their mind
    regroup(store, 0.5, rebuild=True)
    group = groups_of(store)
    assert group[ids[0]] == group[ids[1]] == a != group[ids[3]]


def test_bad_corrections_are_refused_and_change_nothing(store: ClusterStore) -> None:
    vectors, _ = people_templates(people=1, per_person=3, spread=0.05)
    ids = add_faces(store, vectors)
    regroup(store, 0.5)
    group = groups_of(store)[ids[0]]
    before = groups_of(store)
    with pytest.raises(CorrectionError):
        split_group(store, group, ids)  # nothing would be left
    with pytest.raises(GroupNotFoundError):
        merge_groups(store, [group, 999])
    with pytest.raises(CorrectionError):
        merge_groups(store, [group])
    assert groups_of(store) == before
    assert store.links("must") == [] and store.links("cannot") == []


# --- templates and crops protected with the gallery's key ----------------------------------


def _file_bytes(path: Path) -> bytes:
    """The database file and its WAL, as they are on disk."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_with_the_gallery_key_templates_and_crops_are_stored_only_as_ciphertext(
    tmp_path: Path,
) -> None:
    cipher = GalleryCipher.generate()
    path = tmp_path / "sealed.clusters.db"
    vectors, _ = people_templates(people=2, per_person=3, spread=0.1, seed=9)
    crops = [f"JPEG bytes of crop {i};".encode() * 8 for i in range(len(vectors))]
    store = ClusterStore(path, "test-model", cipher=cipher)
    assert store.encrypted
    faces = [
        NewFace(Box(10 * i, 0, 10, 10), 0.9, v, c)
        for i, (v, c) in enumerate(zip(vectors, crops, strict=True))
    ]
    ids = [
        store.add_photo(f"{i}.jpg", f"sha-{i}", 100, 100, [face])[0] for i, face in enumerate(faces)
    ]
    regroup(store, 0.5)  # clustering reads the templates back, decrypted
    group = groups_of(store)
    assert [group[i] for i in ids] == [group[ids[0]]] * 3 + [group[ids[3]]] * 3
    assert group[ids[0]] != group[ids[3]]
    assert np.array_equal(store.face_matrix().vectors, vectors.astype(np.float32))
    assert np.array_equal(store.vectors([ids[4]])[0], vectors[4].astype(np.float32))
    assert store.crop(ids[1]) == crops[1]
    raw = _file_bytes(path)
    for vector, crop in zip(vectors, crops, strict=True):
        assert vector.astype(np.float32).tobytes()[:32] not in raw
        assert crop[:24] not in raw
    store.close()

    with pytest.raises(GalleryKeyRequiredError):
        ClusterStore(path, "test-model")
    with pytest.raises(GalleryKeyMismatchError):
        ClusterStore(path, "test-model", cipher=GalleryCipher.generate())
    # a sealed template copied onto another face's row does not open there
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE faces SET vector = (SELECT vector FROM faces WHERE id = ?) WHERE id = ?",
            (ids[0], ids[1]),
        )
    reopened = ClusterStore(path, "test-model", cipher=cipher)
    with pytest.raises(GalleryKeyMismatchError):
        reopened.face_matrix()
    reopened.close()


def test_a_key_is_refused_for_an_index_holding_faces_in_the_clear(tmp_path: Path) -> None:
    path = tmp_path / "clear.clusters.db"
    store = ClusterStore(path, "test-model")
    vectors, _ = people_templates(people=1, per_person=2, spread=0.1)
    add_faces(store, vectors)
    store.close()
    with pytest.raises(GalleryNotEncryptedError, match="--index"):
        ClusterStore(path, "test-model", cipher=GalleryCipher.generate())
    assert not ClusterStore(path, "test-model").encrypted  # and it still opens without


def _name_a_group_ada(store: ClusterStore, faces: int) -> GroupRecord:
    """Index ``faces`` made-up faces of one person, group them, name the first group Ada."""
    vectors, _ = people_templates(people=1, per_person=faces, spread=0.1)
    add_faces(store, vectors)
    regroup(store, 0.5)
    group = store.groups()[0]
    with store.write() as db:
        store.set_name(db, group.id, "Ada")
    return group


def test_facelens_seals_its_cluster_index_with_the_gallery_key(tmp_path: Path) -> None:
    from facelens import FaceLens

    key_file = tmp_path / "gallery.key"
    write_key_file(key_file)
    lens = FaceLens(gallery=tmp_path / "people.db", key_file=key_file)
    clusters = lens.clusters()
    assert clusters.store.encrypted
    group = _name_a_group_ada(clusters.store, faces=3)
    clusters.close()
    assert lens._erase_cluster_group("Ada") == group.faces > 0  # opened with the same key
    lens.close()


def test_erasing_a_person_reaches_a_cluster_index_made_before_the_key(tmp_path: Path) -> None:
    from facelens import FaceLens

    gallery = tmp_path / "people.db"
    plain = FaceLens(gallery=gallery)
    clusters = plain.clusters()  # no key yet: the index is in the clear
    ada = _name_a_group_ada(clusters.store, faces=2)
    clusters.close()
    key_file = tmp_path / "gallery.key"
    write_key_file(key_file)
    keyed = FaceLens(gallery=gallery, key_file=key_file)  # e.g. after `gallery encrypt`
    assert keyed._erase_cluster_group("Ada") == ada.faces  # the key is not needed to erase
    left = ClusterStore(default_index_path(gallery), plain.pipeline.embedder_id)
    assert left.group_named("Ada") is None
    assert len(left.face_matrix().face_ids) == 2 - ada.faces
    left.close()
    keyed.close()
    plain.close()
