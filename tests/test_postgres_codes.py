"""The code index in front of a PostgreSQL gallery (facelens.index.postgres_codes): its
candidates hold the exact best match, it follows other processes' writes incrementally,
an erased template is never proposed, and FaceLens identifies through it. Runs against
the session's real server (conftest)."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.errors import GalleryError
from facelens.gallery import NewTemplate
from facelens.gallery.postgres import PostgresGallery
from facelens.gallery.protection import GalleryCipher
from facelens.index import postgres_codes
from facelens.index.postgres_codes import PostgresCodeIndex, postgres_search_mode
from facelens.models.registry import DEFAULT_EMBEDDER
from facelens.vectors import unit_rows

DIMENSION = 128


def _people(count: int, per_person: int, seed: int, dimension: int = DIMENSION) -> list[np.ndarray]:
    """``count`` people, each ``per_person`` unit templates around their own direction."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, dimension))
    return [
        unit_rows(centre + 0.8 * rng.normal(size=(per_person, dimension))).astype(np.float32)
        for centre in centres
    ]


def _add(gallery: PostgresGallery, name: str, vectors: np.ndarray) -> list[int]:
    templates = [
        NewTemplate(v, gallery.model_id, f"{name}-{i}", 0.9) for i, v in enumerate(vectors)
    ]
    return gallery.add_templates(name, templates, create=True)


def test_candidates_hold_the_exact_best_template_and_all_of_its_persons_templates(
    postgres_url: str,
) -> None:
    gallery = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    for number, vectors in enumerate(_people(60, 8, seed=1)):
        _add(gallery, f"person {number}", vectors)
    codes = PostgresCodeIndex(gallery, min_templates=100, candidates=16)
    matrix = gallery.template_matrix()
    rng = np.random.default_rng(7)
    probes = unit_rows(
        matrix.vectors[rng.choice(len(matrix.vectors), 40)] + 0.6 * rng.normal(size=(40, DIMENSION))
    ).astype(np.float32)
    for probe in probes:
        candidates = codes.candidate_matrix(probe[None, :])
        best = int(np.argmax(matrix.vectors @ probe))
        assert matrix.template_ids[best] in candidates.template_ids
        owner = matrix.person_ids[best]
        assert (candidates.person_ids == owner).sum() == 8  # every template of that person
        assert len(set(candidates.person_ids.tolist())) <= 16
    assert codes.index is not None and len(codes.index) == 480
    gallery.close()


def test_writes_by_another_process_are_followed_incrementally_and_erasures_never_come_back(
    postgres_url: str,
) -> None:
    writer = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    reader = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    people = _people(30, 5, seed=2)
    for number, vectors in enumerate(people[:25]):
        _add(writer, f"person {number}", vectors)
    codes = PostgresCodeIndex(reader, min_templates=100, candidates=8)
    assert codes.sync() and codes.index is not None and len(codes.index) == 125
    assert not codes.sync()  # nothing written since

    new_ids = _add(writer, "newcomer", people[25])
    assert codes.sync() and len(codes.index) == 130
    assert set(new_ids) <= set(codes.index.ids.tolist())
    found = codes.candidate_matrix(people[25][:1])
    assert "newcomer" in found.names.values()

    erased_ids = writer.template_matrix().template_ids[:5]  # person 0's templates
    writer.erase_person("person 0")
    # before any sync, a stale code cannot bring the erased person back...
    stale = codes.index
    assert stale is not None and set(erased_ids.tolist()) <= set(stale.ids.tolist())
    # ...because the search syncs first, and the people are fetched from the server
    for vector in people[0]:
        assert "person 0" not in codes.candidate_matrix(vector[None, :]).names.values()
    assert len(codes.index) == 125
    assert not set(erased_ids.tolist()) & set(codes.index.ids.tolist())
    writer.close()
    reader.close()


def test_small_galleries_are_searched_by_the_servers_index(postgres_url: str) -> None:
    gallery = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    people = _people(4, 5, seed=3)
    for number, vectors in enumerate(people):
        _add(gallery, f"person {number}", vectors)
    codes = PostgresCodeIndex(gallery, min_templates=1000)
    through_codes = codes.candidate_matrix(people[2][:1], k=3)
    through_server = gallery.candidate_matrix(people[2][:1], k=3)
    assert codes.index is None
    assert sorted(through_codes.template_ids) == sorted(through_server.template_ids)
    gallery.close()


def test_the_search_mode_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(postgres_codes.SEARCH_ENV, raising=False)
    assert postgres_search_mode() == "hnsw"
    monkeypatch.setenv(postgres_codes.SEARCH_ENV, "Codes")
    assert postgres_search_mode() == "codes"
    monkeypatch.setenv(postgres_codes.SEARCH_ENV, "faiss")
    with pytest.raises(GalleryError, match="FACELENS_POSTGRES_SEARCH"):
        postgres_search_mode()


def test_an_encrypted_gallery_is_refused(postgres_url: str) -> None:
    gallery = PostgresGallery(postgres_url, DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())
    with pytest.raises(GalleryError, match="encrypted"):
        PostgresCodeIndex(gallery)
    gallery.close()


def test_facelens_identifies_through_the_code_index(
    postgres_url: str, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facelens import FaceLens

    monkeypatch.setattr(postgres_codes, "ANN_MIN_TEMPLATES", 200)
    lens = FaceLens(gallery=postgres_url)
    lens.enroll("Eileen Collins", [astronaut])
    gallery = lens.gallery
    assert isinstance(gallery, PostgresGallery)
    dimension = gallery.template_matrix().vectors.shape[1]  # the default embedder's
    for number, vectors in enumerate(_people(50, 6, seed=4, dimension=dimension)):
        _add(gallery, f"stranger {number}", vectors)
    monkeypatch.setenv(postgres_codes.SEARCH_ENV, "hnsw")
    by_server = lens.identify(astronaut)
    search = lens.gallery_search
    search.prepare()
    assert search.server_codes is None  # the server's index needs nothing in this process
    monkeypatch.setenv(postgres_codes.SEARCH_ENV, "codes")
    search.prepare()  # what the service does when it starts: the templates are read now
    assert search.server_codes is not None and search.server_codes.index is not None
    assert len(search.server_codes.index) == 301
    by_codes = lens.identify(astronaut)
    assert by_codes[0].identity == by_server[0].identity == "Eileen Collins"
    assert by_codes[0].score == pytest.approx(by_server[0].score, abs=1e-5)
    lens.erase("Eileen Collins")
    assert len(search.server_codes.index) == 300  # erase syncs this process's codes at once
    assert lens.identify(astronaut)[0].identity is None
    lens.close()
