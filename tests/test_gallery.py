"""The gallery keeps its promises: enrollment rules, management, erasure, model safety, concurrency."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from facelens.api import FaceLens
from facelens.errors import (
    GalleryModelMismatchError,
    PersonExistsError,
    PersonNotFoundError,
    TemplateNotFoundError,
)
from facelens.gallery import NewTemplate, SQLiteGallery, resolve_gallery_path
from facelens.models.registry import DEFAULT_EMBEDDER


def _gallery_bytes(path: Path) -> bytes:
    """The database file and its WAL/shared-memory companions, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_enroll_list_rename_and_remove_a_template(tmp_path: Path, astronaut: np.ndarray) -> None:
    with FaceLens(gallery=tmp_path / "g.db") as lens:
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
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    two_faces = np.concatenate([astronaut, astronaut], axis=1)
    blank = np.full((300, 300, 3), 128, np.uint8)
    with FaceLens(gallery=tmp_path / "g.db") as lens:
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
        lens.enroll("Keeper Person", [astronaut[::2, ::2].copy()])
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


def test_gallery_of_another_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    SQLiteGallery(path, "some-other-embedder").close()
    with pytest.raises(GalleryModelMismatchError, match="some-other-embedder"):
        SQLiteGallery(path, DEFAULT_EMBEDDER)
    gallery = SQLiteGallery(tmp_path / "h.db", DEFAULT_EMBEDDER)
    with pytest.raises(GalleryModelMismatchError):
        gallery.add_templates(
            "x", [NewTemplate(np.ones(128, np.float32), "other", "s", 1.0)], create=True
        )


def test_gallery_path_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACELENS_GALLERY", str(tmp_path / "env.db"))
    assert resolve_gallery_path("given.db") == Path("given.db")
    assert resolve_gallery_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("FACELENS_GALLERY")
    assert resolve_gallery_path(None).name == "gallery.db"


def _writer(path: str, worker: int, count: int) -> None:
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER)
    rng = np.random.default_rng(worker)
    for index in range(count):
        vector = rng.normal(size=128).astype(np.float32)
        vector /= np.linalg.norm(vector)
        template = NewTemplate(vector, DEFAULT_EMBEDDER, f"w{worker}-{index}", 1.0)
        gallery.add_templates(f"person {index % 5}", [template], create=True)
    gallery.close()


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "g.db")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER)
    assert sum(p.templates for p in gallery.list_people()) == 100
    assert len(gallery.list_people()) == 5
    assert gallery.integrity_check() == "ok"
    assert len(gallery.template_matrix().vectors) == 100


def test_gallery_chooses_its_own_embedder(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "dlib.db"
    with FaceLens(gallery=path, embedder="dlib-resnet-v1") as lens:
        lens.enroll("Eileen Collins", [astronaut])
    with FaceLens(gallery=path) as lens:  # no embedder named: the gallery's own is used
        assert lens.analyzer.embedder_id == "dlib-resnet-v1"
        assert [m.identity for m in lens.identify(astronaut[:, ::-1].copy())] == ["Eileen Collins"]
    with pytest.raises(GalleryModelMismatchError):
        FaceLens(gallery=path, embedder=DEFAULT_EMBEDDER).people()
