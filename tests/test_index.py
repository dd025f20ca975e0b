"""The search indexes: exact/approximate search, persistence, erased templates never returned.

Both engines are tested where they promise the same: the code index (the
default, facelens.index.codes) and the HNSW graph (facelens.index.ann).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelens.gallery import NewTemplate, SQLiteGallery
from facelens.gallery.store import TemplateMatrix
from facelens.index import (
    AnnIndex,
    AnnParameters,
    CodeIndex,
    GalleryIndex,
    exact_top_k,
    index_path_for,
)
from facelens.index.ann import index_files
from facelens.index.search import CANDIDATES, ranked_people, top_templates
from facelens.vectors import unit_rows

MODEL = "sface-2021dec-int8bq"


def clustered(people: int, per_person: int, dimension: int = 128, seed: int = 0) -> np.ndarray:
    """Unit templates in tight per-person clusters (person i owns rows i*per_person...)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, dimension))
    noise = 0.35 * rng.standard_normal((people * per_person, dimension))
    return unit_rows(np.repeat(centres, per_person, axis=0) + noise).astype(np.float32)


def matrix_of(vectors: np.ndarray, per_person: int, first_id: int = 1) -> TemplateMatrix:
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    owners = np.arange(len(vectors)) // per_person + 1
    return TemplateMatrix(
        template_ids=ids,
        person_ids=owners.astype(np.int64),
        vectors=vectors,
        names={int(p): f"person {p}" for p in np.unique(owners)},
        qualities=np.ones(len(vectors)),
    )


def test_exact_top_k_matches_a_full_sort() -> None:
    vectors = clustered(50, 4)
    probes = vectors[::37]
    rows, scores = exact_top_k(probes, vectors, 5)
    full = probes @ vectors.T
    assert np.array_equal(rows, np.argsort(-full, axis=1, kind="stable")[:, :5])
    assert np.allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :5])


ENGINES = [AnnIndex, CodeIndex]


@pytest.mark.parametrize(
    ("engine", "candidates"),
    # the HNSW graph with the candidate count it was measured with (docs/benchmarks.md#million)
    [(AnnIndex, 256), (CodeIndex, CANDIDATES)],
)
def test_index_finds_the_exact_nearest_after_rescoring(
    engine: type[AnnIndex | CodeIndex], candidates: int
) -> None:
    vectors = clustered(500, 4)
    matrix = matrix_of(vectors, 4)
    index = engine(128, threads=1)  # one thread: the same graph on every run
    index.add(matrix.template_ids, vectors)
    probes = unit_rows(vectors[::13] + 0.05).astype(np.float32)
    exact_rows, _exact_scores = exact_top_k(probes, vectors, 1)
    rows, scores = top_templates(probes, matrix, 10, index, min_templates=0, candidates=candidates)
    assert (rows[:, 0] == exact_rows[:, 0]).mean() >= 0.99
    # the reported scores are exact cosines, not the quantized index's
    assert np.allclose(scores[:, 0], np.einsum("ij,ij->i", probes, vectors[rows[:, 0]]), atol=1e-6)


def test_removed_ids_never_come_back_and_leave_no_bytes(tmp_path: Path) -> None:
    vectors = clustered(200, 5)
    index = AnnIndex(128, AnnParameters(quantization="f32"))
    index.add(np.arange(1, 1001), vectors)
    erased = np.arange(1, 6)  # all of person 1
    assert index.remove(erased) == 5
    ids, _ = index.search(vectors[:5], 50)
    assert not np.isin(ids, erased).any()
    path = tmp_path / "g.usearch"
    index.save(path)
    raw = path.read_bytes()
    assert not any(vectors[i].tobytes() in raw for i in range(5))
    assert vectors[10].tobytes() in raw  # a kept template is there, so the check can fail
    loaded = AnnIndex.load(path)
    assert len(loaded) == 995 and not np.isin(loaded.ids, erased).any()
    assert not np.isin(loaded.search(vectors[:5], 50)[0], erased).any()


def test_the_code_index_forgets_removed_templates_in_memory_and_on_disk(tmp_path: Path) -> None:
    vectors = clustered(200, 5)
    index = CodeIndex(128)
    index.add(np.arange(1, 1001), vectors)
    decoded_before = index._codes.reconstruct_n(0, 1000)  # type: ignore[union-attr]
    erased = np.arange(1, 6)  # all of person 1
    assert index.remove(erased) == 5 and index.remove(erased) == 0
    ids, _ = index.search(vectors[:5], 50)
    assert not np.isin(ids, erased).any() and (ids > 0).all()
    path = tmp_path / "g.codes.npz"
    index.save(path)
    loaded = CodeIndex.load(path)
    assert len(loaded) == 995 and not np.isin(loaded.ids, erased).any()
    decoded_after = loaded._codes.reconstruct_n(0, 995)  # type: ignore[union-attr]
    # the kept templates keep their very codes; no code of an erased one is left
    assert np.array_equal(decoded_after, decoded_before[5:])
    assert not any((decoded_after == row).all(axis=1).any() for row in decoded_before[:5])
    assert not np.isin(loaded.search(vectors[:5], 50)[0], erased).any()


def test_the_code_index_needs_enough_templates_to_learn_its_codes() -> None:
    index = CodeIndex(128)
    with pytest.raises(ValueError, match="at least"):
        index.add(np.arange(1, 11), clustered(2, 5))
    with pytest.raises(ValueError, match="even"):
        CodeIndex(127)


@pytest.mark.parametrize("engine", ENGINES)
def test_stale_index_ids_are_filtered_by_the_gallery(engine: type[AnnIndex | CodeIndex]) -> None:
    """An index that still holds an erased template (e.g. written by another process before
    the erase) cannot return it: candidates are looked up in the gallery's own matrix."""
    vectors = clustered(100, 4)
    index = engine(128)
    index.add(np.arange(1, 401), vectors)
    live = matrix_of(vectors[4:], 4, first_id=5)  # person 1 (ids 1-4) erased in the gallery
    people = ranked_people(vectors[:4], live, 5, index, min_templates=0)
    assert all(person != 1 for ranked in people for person, _ in ranked)
    assert all(ranked for ranked in people)


def test_gallery_index_persists_and_follows_enroll_and_erase(tmp_path: Path) -> None:
    vectors = clustered(60, 5)
    gallery = SQLiteGallery(tmp_path / "people.db", MODEL)
    for person in range(60):
        gallery.add_templates(
            f"p{person}",
            [NewTemplate(v, MODEL, "synthetic", 0.9) for v in vectors[person * 5 : person * 5 + 5]],
            create=True,
        )
    path = index_path_for(gallery.path)
    index = GalleryIndex(path, min_templates=100)
    matrix = gallery.template_matrix()
    assert index.ranked_people(vectors[:1], matrix, 3) is not None
    assert path.exists()
    assert len(GalleryIndex(path).index or []) == 300  # reloaded from disk

    gallery.erase_person("p0")
    index.sync(gallery.template_matrix())
    reloaded = GalleryIndex(path, min_templates=100)
    assert reloaded.index is not None and len(reloaded.index) == 295
    ranked = reloaded.ranked_people(vectors[:5], gallery.template_matrix(), 5)
    assert ranked is not None
    names = gallery.template_matrix().names
    assert all(names[p] != "p0" for people in ranked for p, _ in people)
    assert all(people[0][0] != 0 for people in ranked)

    gallery.add_templates("p0", [NewTemplate(vectors[0], MODEL, "again", 0.9)], create=True)
    reloaded.sync(gallery.template_matrix())
    assert len(reloaded.index or []) == 296
    gallery.close()


def test_small_galleries_are_searched_exactly(tmp_path: Path) -> None:
    vectors = clustered(10, 3)
    matrix = matrix_of(vectors, 3)
    index = GalleryIndex(tmp_path / "g.db.codes.npz", min_templates=1000)
    assert index.ranked_people(vectors[:2], matrix, 3) is None
    assert index.index is None and not index.path.exists()


def test_encrypted_galleries_keep_the_index_in_memory(tmp_path: Path) -> None:
    vectors = clustered(30, 5)
    index = GalleryIndex(tmp_path / "g.db.codes.npz", min_templates=10, persist=False)
    assert index.ranked_people(vectors[:2], matrix_of(vectors, 5), 3) is not None
    assert index.index is not None and not index.path.exists()


def test_a_damaged_index_file_is_rebuilt(tmp_path: Path) -> None:
    path = index_path_for(tmp_path / "g.db")
    path.write_bytes(b"not an index")
    vectors = clustered(30, 5)
    index = GalleryIndex(path, min_templates=10)
    assert index.index is None
    assert index.ranked_people(vectors[:1], matrix_of(vectors, 5), 3) is not None
    assert len(CodeIndex.load(path)) == 150


def test_the_usearch_files_of_earlier_versions_are_deleted(tmp_path: Path) -> None:
    """They hold (quantized) templates, erased people's included: nothing keeps them current."""
    old = AnnIndex(128)
    old.add(np.arange(1, 151), clustered(30, 5))
    legacy = tmp_path / "g.db.usearch"
    old.save(legacy)
    assert all(f.exists() for f in index_files(legacy))
    GalleryIndex(index_path_for(tmp_path / "g.db"))
    assert not any(f.exists() for f in index_files(legacy))


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_shapes_and_repeated_ids_are_refused(engine: type[AnnIndex | CodeIndex]) -> None:
    index = engine(128)
    with pytest.raises(ValueError):
        index.add(np.arange(1, 101), np.zeros((100, 64), np.float32))
    index.add(np.arange(1, 101), clustered(20, 5))
    with pytest.raises(ValueError):
        index.add(np.arange(100, 201), clustered(20, 5))


def test_identification_through_the_index_decides_like_exact_search(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    """A real face among 2,000 synthetic templates: same decision, scores and evidence."""
    from facelens import FaceLens
    from facelens.match.decide import identify_faces

    lens = FaceLens(gallery=tmp_path / "people.db")
    face = lens.detect(astronaut)[0]
    assert face.template is not None
    dimension = len(face.template.vector)  # whichever embedder is the default
    own = unit_rows(face.template.vector[None, :] + 0.2 * clustered(1, 1, dimension))
    vectors = np.concatenate([own.astype(np.float32), clustered(400, 5, dimension)])
    matrix = matrix_of(vectors, 5)
    point, calibration = lens.operating_point(), lens.calibration
    index = GalleryIndex(tmp_path / "people.db.codes.npz", min_templates=1000)
    exact = identify_faces([face], matrix, point, calibration, 3)[0]
    through_index = identify_faces([face], matrix, point, calibration, 3, index=index)[0]
    assert index.index is not None and len(index.index) == 2001
    assert exact.identity == through_index.identity == "person 1"
    assert [c.name for c in exact.candidates] == [c.name for c in through_index.candidates]
    assert np.allclose(
        [c.score for c in exact.candidates], [c.score for c in through_index.candidates]
    )
    assert exact.llr == pytest.approx(through_index.llr, abs=1e-4)
    assert exact.score_fmr == pytest.approx(through_index.score_fmr, rel=1e-3)
    lens.close()
