"""The gallery keeps its promises: enrollment rules, management, erasure, model safety, concurrency.

Tests that take ``gallery_location`` run twice: on a new SQLite file and on a
new database of the session's real PostgreSQL server (tests/conftest.py).
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from facelens.api import FaceLens
from facelens.errors import (
    GalleryError,
    GalleryModelMismatchError,
    PersonExistsError,
    PersonNotFoundError,
    TemplateNotFoundError,
)
from facelens.gallery import (
    NewTemplate,
    SQLiteGallery,
    open_gallery,
    resolve_gallery,
    resolve_gallery_path,
)
from facelens.models.registry import DEFAULT_EMBEDDER
from tests.conftest import PostgresServer


def _gallery_bytes(path: Path) -> bytes:
    """The database file and its WAL/shared-memory companions, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_enroll_list_rename_and_remove_a_template(
    gallery_location: str, astronaut: np.ndarray
) -> None:
    with FaceLens(gallery=gallery_location) as lens:
        report = lens.enroll("Eileen", [astronaut, astronaut[:, ::-1].copy()])
        assert len(report.accepted) == 2 and report.person is not None
        assert [(p.name, p.templates) for p in lens.people()] == [("Eileen", 2)]
        lens.rename("Eileen", "Eileen Collins")
        with pytest.raises(PersonNotFoundError):
            lens.gallery.get_person("Eileen")
        first = lens.gallery.list_templates("Eileen Collins")[0]
        assert lens.gallery.get_crop(first.id)[:2] == b"\xff\xd8"  # a JPEG of the aligned face
        lens.gallery.remove_template(first.id)
        assert lens.gallery.get_person("Eileen Collins").templates == 1
        with pytest.raises(TemplateNotFoundError):
            lens.gallery.remove_template(first.id)
        lens.gallery.add_person("Someone Else")
        with pytest.raises(PersonExistsError):
            lens.rename("Someone Else", "Eileen Collins")


def test_enrollment_rejects_bad_photos_and_keeps_the_good(
    gallery_location: str, astronaut: np.ndarray
) -> None:
    two_faces = np.concatenate([astronaut, astronaut], axis=1)
    blank = np.full((300, 300, 3), 128, np.uint8)
    with FaceLens(gallery=gallery_location) as lens:
        report = lens.enroll("Eileen", [blank, two_faces, b"not an image", astronaut])
    reasons = [o.reason for o in report.outcomes]
    assert reasons[0] == "no face found"
    assert reasons[1] is not None and reasons[1].startswith("2 faces found")
    assert reasons[2] is not None and "not an image" in reasons[2]
    assert report.outcomes[3].accepted and report.outcomes[3].template_id is not None
    assert report.person is not None and report.person.templates == 1


def test_erased_person_leaves_no_trace_in_the_file(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "gallery.db"
    photo = tmp_path / "eileen_collins_portrait.png"
    from PIL import Image

    Image.fromarray(astronaut).save(photo)
    with FaceLens(gallery=path) as lens:
        lens.enroll("Eileen Collins", [photo])
        lens.enroll("Keeper Person", [astronaut[::2, ::2].copy()], force=True)  # her face again
        erased = lens.gallery.list_templates("Eileen Collins")[0]
        crop = lens.gallery.get_crop(erased.id)
        vector = lens.gallery.template_matrix().vectors[0].astype("<f4").tobytes()
        kept_vector = lens.gallery.template_matrix().vectors[1].astype("<f4").tobytes()
        before = _gallery_bytes(path)
        assert b"Eileen Collins" in before and vector[:32] in before and crop is not None
        assert lens.erase("Eileen Collins") == 1
        after = _gallery_bytes(path)
    assert b"Eileen Collins" not in after
    assert b"eileen_collins_portrait" not in after
    assert vector[:16] not in after and vector[-16:] not in after
    assert crop[-100:-68] not in after  # entropy-coded data, unique to this face
    assert b"Keeper Person" in after and kept_vector[:32] in after  # the rest is intact


def _postgres_table_bytes(url: str, data_dir: Path) -> bytes:
    """Every file of the gallery's tables, their TOAST tables and all their indexes (HNSW too),
    as on disk after a CHECKPOINT writes out what the server holds in memory."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CHECKPOINT")
        paths = db.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'facelens' "
            "UNION SELECT pg_relation_filepath(t.reltoastrelid) FROM pg_class t "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = 'facelens' AND t.reltoastrelid <> 0 "
            "UNION SELECT pg_relation_filepath(i.indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.reltoastrelid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'facelens'"
        ).fetchall()
    files = [f for (p,) in paths if p for f in sorted(data_dir.glob(p + "*"))]
    assert files
    return b"".join(f.read_bytes() for f in files)


def test_erased_person_leaves_no_trace_in_the_postgres_tables(
    postgres_url: str, postgres_server: PostgresServer, tmp_path: Path, astronaut: np.ndarray
) -> None:
    """The PostgreSQL counterpart: no byte of theirs in any file of the gallery's tables and
    indexes after the erase (the write-ahead log is another matter: docs/architecture.md)."""
    photo = tmp_path / "eileen_collins_portrait.png"
    from PIL import Image

    Image.fromarray(astronaut).save(photo)
    with FaceLens(gallery=postgres_url) as lens:
        lens.enroll("Eileen Collins", [photo])
        lens.enroll("Keeper Person", [astronaut[::2, ::2].copy()], force=True)  # her face again
        erased = lens.gallery.list_templates("Eileen Collins")[0]
        crop = lens.gallery.get_crop(erased.id)
        matrix = lens.gallery.template_matrix()
        vector = matrix.vectors[0].astype("<f4").tobytes()
        kept_vector = matrix.vectors[1].astype("<f4").tobytes()
        before = _postgres_table_bytes(postgres_url, postgres_server.data_dir)
        assert b"Eileen Collins" in before and vector[:32] in before and crop is not None
        assert crop[-100:-68] in before
        assert lens.erase("Eileen Collins") == 1
        after = _postgres_table_bytes(postgres_url, postgres_server.data_dir)
    assert b"Eileen Collins" not in after
    assert b"eileen_collins_portrait" not in after
    assert vector[:16] not in after and vector[-16:] not in after
    assert crop[-100:-68] not in after
    assert b"Keeper Person" in after and kept_vector[:32] in after  # the rest is intact


def test_gallery_of_another_model_is_refused(gallery_location: str) -> None:
    open_gallery(gallery_location, "some-other-embedder").close()
    with pytest.raises(GalleryModelMismatchError, match="some-other-embedder"):
        open_gallery(gallery_location, DEFAULT_EMBEDDER)
    gallery = open_gallery(gallery_location, "some-other-embedder")
    with pytest.raises(GalleryModelMismatchError):
        gallery.add_templates(
            "x", [NewTemplate(np.ones(128, np.float32), "other", "s", 1.0)], create=True
        )
    assert gallery.list_people() == []  # the refused write left nothing behind
    gallery.close()


def test_gallery_path_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACELENS_GALLERY", str(tmp_path / "env.db"))
    assert resolve_gallery_path("given.db") == Path("given.db")
    assert resolve_gallery_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("FACELENS_GALLERY")
    assert resolve_gallery_path(None).name == "gallery.db"
    url = "postgresql://facelens@db.example:5432/people"
    assert resolve_gallery(url) == url  # a URL stays a URL, never a file path
    monkeypatch.setenv("FACELENS_GALLERY", url)
    assert resolve_gallery(None) == url
    assert resolve_gallery("given.db") == Path("given.db")
    with pytest.raises(GalleryError, match="PostgreSQL URL"):
        resolve_gallery_path(None)  # callers that need a file are told, not handed a bogus path


def _writer(path: str, worker: int, count: int) -> None:
    gallery = open_gallery(path, DEFAULT_EMBEDDER)
    rng = np.random.default_rng(worker)
    for index in range(count):
        vector = rng.normal(size=128).astype(np.float32)
        vector /= np.linalg.norm(vector)
        template = NewTemplate(vector, DEFAULT_EMBEDDER, f"w{worker}-{index}", 1.0)
        gallery.add_templates(f"person {index % 5}", [template], create=True)
    gallery.close()


def test_concurrent_writers_lose_nothing(gallery_location: str) -> None:
    path = gallery_location
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    gallery = open_gallery(path, DEFAULT_EMBEDDER)
    assert sum(p.templates for p in gallery.list_people()) == 100
    assert len(gallery.list_people()) == 5
    assert gallery.integrity_check() == "ok"  # type: ignore[attr-defined]
    assert len(gallery.template_matrix().vectors) == 100


def test_gallery_chooses_its_own_embedder(gallery_location: str, astronaut: np.ndarray) -> None:
    path = gallery_location
    with FaceLens(gallery=path, embedder="dlib-resnet-v1") as lens:
        lens.enroll("Eileen Collins", [astronaut])
    with FaceLens(gallery=path) as lens:  # no embedder named: the gallery's own is used
        assert lens.pipeline.embedder_id == "dlib-resnet-v1"
        assert [m.identity for m in lens.identify(astronaut[:, ::-1].copy())] == ["Eileen Collins"]
    with pytest.raises(GalleryModelMismatchError):
        FaceLens(gallery=path, embedder=DEFAULT_EMBEDDER).people()


def test_a_gallery_that_cannot_be_created_there_is_not_called_damaged() -> None:
    """/proc takes no new files, even from root: the error says so, not "damaged"."""
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux's /proc")
    with pytest.raises(GalleryError) as refused:
        SQLiteGallery(Path("/proc/facelens-test-gallery.db"), DEFAULT_EMBEDDER)
    message = str(refused.value)
    assert "cannot be opened or created there" in message and "damaged" not in message
