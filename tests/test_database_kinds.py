"""A gallery, a scan index and a library are told apart by the tables they hold: a file of
one kind given where another is expected is refused in words, before anything is written
to it; the usual layout (a gallery, its ``.library.db`` and its ``.service`` state beside
it), files of earlier versions, and new or empty files open as before.

No model is loaded: the files are made empty (or with rows that need no template) through
the stores themselves.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner

from facelens.cli.main import cli
from facelens.cluster.clusterer import default_index_path
from facelens.cluster.library_store import library_location, open_library_store
from facelens.cluster.store import ClusterStore
from facelens.errors import ClusterError, FaceLensError, GalleryError
from facelens.gallery.sqlite import SQLiteGallery, stored_calibration, stored_meta, stored_model_id
from facelens.ingest.scan_index import ScanIndex
from facelens.ingest.sources import WorkItem
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB

MODEL = "test-model"


class Closable(Protocol):
    def close(self) -> None: ...


Opener = Callable[[Path], Closable]

# Each kind: how the project opens it, and the error it raises for a file of another kind.
OPENERS: dict[str, tuple[Opener, type[FaceLensError]]] = {
    "gallery": (lambda path: SQLiteGallery(path, MODEL), GalleryError),
    "scan index": (lambda path: ScanIndex(path, MODEL), GalleryError),
    "library": (lambda path: ClusterStore(path, MODEL), ClusterError),
    "service state": (StateDB, GalleryError),
}

# The library's tables as the first `facelens cluster` wrote them (schema 1, `.clusters.db`).
LIBRARY_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE photos (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL, height INTEGER NOT NULL, faces INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
    quality REAL NOT NULL, vector BLOB NOT NULL, crop BLOB,
    group_id INTEGER REFERENCES groups(id) ON DELETE SET NULL,
    template_id INTEGER, enrolled_as TEXT, added_at TEXT NOT NULL
);
CREATE TABLE links (
    kind TEXT NOT NULL CHECK (kind IN ('must', 'cannot')),
    face_a INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    face_b INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL, PRIMARY KEY (kind, face_a, face_b), CHECK (face_a < face_b)
);
CREATE TABLE corrections (
    id INTEGER PRIMARY KEY, action TEXT NOT NULL, detail TEXT NOT NULL, created_at TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1'), ('model_id', 'test-model');
"""

# The gallery's tables as its first version wrote them (no calibrations, no audit).
GALLERY_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL, vector BLOB NOT NULL, crop BLOB, source TEXT NOT NULL,
    quality REAL NOT NULL, created_at TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1'), ('model_id', 'test-model');
INSERT INTO people VALUES (1, 'Ann', '2024-01-01T00:00:00+00:00');
"""


def make_gallery(path: Path) -> Path:
    gallery = SQLiteGallery(path, MODEL)
    gallery.add_person("Ann")
    gallery.close()
    return path


def make_scan_index(path: Path) -> Path:
    scan = ScanIndex(path, MODEL)
    scan.add_items([WorkItem("/photos/a.jpg", "image"), WorkItem("/photos/b.mp4", "video")])
    scan.close()
    return path


def make_library(path: Path) -> Path:
    ClusterStore(path, MODEL).close()
    return path


MAKERS: dict[str, Callable[[Path], Path]] = {
    "gallery": make_gallery,
    "scan index": make_scan_index,
    "library": make_library,
}


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.fixture(autouse=True)
def _no_configured_places(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FACELENS_GALLERY", "FACELENS_LIBRARY", "FACELENS_SERVICE_DIR"):
        monkeypatch.delenv(name, raising=False)


MISMATCHES = [(made, opened) for made in MAKERS for opened in OPENERS if made != opened]


@pytest.mark.parametrize(("made", "opened"), MISMATCHES)
def test_a_file_of_another_kind_is_refused_and_left_as_it_was(
    tmp_path: Path, made: str, opened: str
) -> None:
    path = MAKERS[made](tmp_path / "file.db")
    before, names = path.read_bytes(), tables(path)
    opener, error = OPENERS[opened]
    with pytest.raises(error, match=f"is a facelens {made}, not a {opened}: "):
        opener(path)
    assert path.read_bytes() == before
    assert tables(path) == names
    opener, _ = OPENERS[made]
    opener(path).close()  # still opens as what it is


def test_the_messages_say_which_option_takes_the_file(tmp_path: Path) -> None:
    scan = make_scan_index(tmp_path / "scan.db")
    gallery = make_gallery(tmp_path / "g.db")
    with pytest.raises(GalleryError) as refused:
        SQLiteGallery(scan, MODEL)
    assert str(refused.value) == (
        f"{scan} is a facelens scan index, not a gallery: pass it as --scan "
        "(or give another --gallery)"
    )
    with pytest.raises(GalleryError) as refused:
        ScanIndex(gallery, MODEL)
    assert str(refused.value) == (
        f"{gallery} is a facelens gallery, not a scan index: pass it as --gallery "
        "(or give another --scan)"
    )


@pytest.mark.parametrize("made", ["scan index", "library"])
def test_reading_a_gallery_s_meta_refuses_another_kind(tmp_path: Path, made: str) -> None:
    path = MAKERS[made](tmp_path / "file.db")
    before = path.read_bytes()
    for read in (stored_model_id, stored_meta, stored_calibration):
        with pytest.raises(GalleryError, match=f"is a facelens {made}, not a gallery"):
            read(path)
    assert path.read_bytes() == before


def test_the_cli_refuses_a_scan_index_as_the_gallery(tmp_path: Path) -> None:
    scan = make_scan_index(tmp_path / "scan.db")
    before = scan.read_bytes()
    result = CliRunner().invoke(cli, ["--gallery", str(scan), "people", "list"])
    assert result.exit_code != 0
    assert "is a facelens scan index, not a gallery" in result.output
    assert scan.read_bytes() == before


def test_the_cli_refuses_a_gallery_as_the_scan_index_before_reading_the_photo(
    tmp_path: Path,
) -> None:
    gallery = make_gallery(tmp_path / "g.db")
    before = gallery.read_bytes()
    photo = tmp_path / "not-read.jpg"
    photo.write_bytes(b"never decoded: the refusal comes first")
    result = CliRunner().invoke(cli, ["search", str(photo), "--scan", str(gallery)])
    assert result.exit_code == 1
    assert "is a facelens gallery, not a scan index: pass it as --gallery" in result.output
    assert "not-read.jpg" not in result.output
    assert gallery.read_bytes() == before


def test_the_default_layout_opens_side_by_side(tmp_path: Path) -> None:
    gallery_path = tmp_path / "gallery.db"
    gallery = SQLiteGallery(gallery_path, MODEL)
    gallery.add_person("Ann")
    location = library_location(gallery_path)
    assert location == default_index_path(gallery_path) == tmp_path / "gallery.library.db"
    assert isinstance(location, Path)
    library = open_library_store(location, MODEL)
    state = StateDB(ServiceSettings(gallery=str(gallery_path)).state_db)
    scan = ScanIndex(tmp_path / "facelens-scan.db", MODEL)
    for store in (gallery, library, state, scan):
        store.close()
    assert {"people", "templates"} <= tables(gallery_path)
    assert {"photos", "groups"} <= tables(location)
    # opened again, each as what it is
    reopened = SQLiteGallery(gallery_path, MODEL)
    assert [p.name for p in reopened.list_people()] == ["Ann"]
    reopened.close()
    open_library_store(location, MODEL).close()
    ScanIndex(tmp_path / "facelens-scan.db", MODEL).close()
    assert stored_model_id(gallery_path) == MODEL


def test_the_service_state_is_no_gallery_or_library(tmp_path: Path) -> None:
    path = ServiceSettings(gallery=str(tmp_path / "gallery.db")).state_db
    StateDB(path).close()
    before = path.read_bytes()
    with pytest.raises(GalleryError, match="is a facelens service state, not a gallery"):
        SQLiteGallery(path, MODEL)
    with pytest.raises(ClusterError, match="is a facelens service state, not a library"):
        ClusterStore(path, MODEL)
    assert path.read_bytes() == before


@pytest.mark.parametrize("kind", list(OPENERS))
def test_a_missing_or_empty_file_is_created_as_the_kind_asked(tmp_path: Path, kind: str) -> None:
    opener, _ = OPENERS[kind]
    missing = tmp_path / "new" / "missing.db"
    empty = tmp_path / "empty.db"
    empty.touch(mode=0o600)
    for path in (missing, empty):
        opener(path).close()
        opener(path).close()  # and opens again
        assert tables(path)


def test_files_of_earlier_versions_open_as_their_kind(tmp_path: Path) -> None:
    gallery = tmp_path / "old.db"
    library = tmp_path / "old.clusters.db"
    for path, schema in ((gallery, GALLERY_SCHEMA_1), (library, LIBRARY_SCHEMA_1)):
        with closing(sqlite3.connect(path)) as db:
            db.executescript(schema)
        path.chmod(0o600)
    opened = SQLiteGallery(gallery, MODEL)
    assert [p.name for p in opened.list_people()] == ["Ann"]
    opened.close()
    ClusterStore(library, MODEL).close()
    with pytest.raises(GalleryError, match="is a facelens library, not a gallery"):
        SQLiteGallery(library, MODEL)
    with pytest.raises(ClusterError, match="is a facelens gallery, not a library"):
        ClusterStore(gallery, MODEL)
