"""The library of a PostgreSQL gallery: its tables in the gallery's database (real server,
real photos).

A few LFW people and a damaged file are copied to a temporary folder at test
time (never into the repository) and scanned into the library of a gallery
in a fresh database of the session's PostgreSQL server (tests/conftest.py),
encrypted with a gallery key like a deployment's.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from facelens import FaceLens
from facelens.cluster.library_store import library_exists, library_location
from facelens.cluster.postgres_store import PostgresLibraryStore
from facelens.errors import GalleryKeyMismatchError, GalleryKeyRequiredError
from facelens.gallery.protection import GalleryCipher, write_key_file
from facelens.ingest import expand_sources
from facelens.ingest.library import Library
from tests.conftest import PostgresServer, data_path

PEOPLE = ("Albert_Costa", "Angela_Bassett", "Benjamin_Netanyahu")
PER_PERSON = 4


def _photos(root: Path) -> Path:
    lfw = data_path("lfw/images_deepfunneled")
    folder = root / "photos"
    for person in PEOPLE:
        (folder / person).mkdir(parents=True)
        for photo in sorted((lfw / person).glob("*.jpg"))[:PER_PERSON]:
            shutil.copy(photo, folder / person / photo.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    return folder


@pytest.fixture
def setup(tmp_path: Path, postgres_url: str) -> Iterator[tuple[str, Path, Path]]:
    """The gallery's URL, its key file and a folder of photos (nothing scanned yet)."""
    key = tmp_path / "gallery.key"
    write_key_file(key)
    yield postgres_url, key, _photos(tmp_path)


def _group_of(library: Library, person: str) -> int:
    """The group holding most of ``person``'s photos."""
    counts: dict[int, int] = {}
    for face in library.store.faces():
        if f"/{person}/" in face.source and face.group_id is not None:
            counts[face.group_id] = counts.get(face.group_id, 0) + 1
    return max(counts, key=lambda g: counts[g])


def _rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as db:
        return list(db.execute(sql.encode(), params).fetchall())


def test_scan_groups_name_and_appearances_live_in_the_gallerys_database(
    setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, key, folder = setup
    with FaceLens(gallery=url, key_file=key) as lens:
        library = lens.library()
        try:
            assert isinstance(library.store, PostgresLibraryStore) and library.store.encrypted
            summary = library.scan(expand_sources([folder]))
            assert summary.processed == len(PEOPLE) * PER_PERSON + 1 and summary.failed == 1
            counts = library.store.item_counts()
            assert (counts.done, counts.failed, counts.pending) == (len(PEOPLE) * PER_PERSON, 1, 0)
            assert library.store.items("failed")[0].source.endswith("broken.jpg")
            total, page = library.groups_page(0, 10)
            assert total >= len(PEOPLE)
            for group in page[: len(PEOPLE)]:  # the largest groups are each one person
                people = {
                    Path(f.source).parent.name for f in library.store.faces(group_id=group.id)
                }
                assert len(people) == 1
            group = _group_of(library, "Angela_Bassett")
            size = library.store.group(group).faces
            library.name(group, "Angela Bassett")
            assert lens.gallery.get_person("Angela Bassett").templates == min(size, 8)
            found = library.appearances("Angela Bassett", lens.operating_point(), lens.calibration)
            assert len([a for a in found if a.how == "linked"]) == size
            assert all("Angela_Bassett" in a.source for a in found)
            assert library.store.crop(found[0].face)[:2] == b"\xff\xd8"  # JPEG, once opened
            probe = library.store.vectors([found[0].face])[0]
            hits = library.search(probe, lens.operating_point(), lens.calibration)
            assert hits and all("Angela_Bassett" in h.source for h in hits if h.match)
            ids = [f.id for f in library.store.faces()]
            plain = dict(zip(ids, library.store.vectors(ids), strict=True))
            crops = {i: library.store.crop(i) for i in ids}
        finally:
            library.close()
    # Nothing was written beside anything: the library is the database's tables.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.key", "photos"]
    assert library_location(url) == url and library_exists(url)
    stored = _rows(url, "SELECT id, vector, crop FROM facelens.library_faces")
    assert len(stored) == len(plain) >= len(PEOPLE) * PER_PERSON
    for face_id, vector, crop in stored:  # only ciphertext: no template, no JPEG bytes
        template = np.asarray(plain[face_id], np.float32).tobytes()
        assert template[:32] not in bytes(vector) and len(vector) > len(template)
        opened = crops[face_id]
        assert opened is not None and opened[100:132] not in bytes(crop)
    # Another process (a new lens) sees the same state: the named group and its person.
    with FaceLens(gallery=url, key_file=key) as lens:
        library = lens.library()
        try:
            assert library.store.group_named("Angela Bassett") is not None
            assert library.scan(expand_sources([folder])).processed == 0  # incremental
        finally:
            library.close()
    # Without the key, the encrypted library does not open.
    with pytest.raises(GalleryKeyRequiredError):
        PostgresLibraryStore(url, lens.pipeline.embedder_id)
    with pytest.raises(GalleryKeyMismatchError):
        PostgresLibraryStore(url, lens.pipeline.embedder_id, cipher=GalleryCipher.generate())


def test_a_scan_resumes_after_a_restart(setup: tuple[str, Path, Path]) -> None:
    url, key, folder = setup
    with FaceLens(gallery=url, key_file=key) as lens:
        library = lens.library()
        try:

            def stop(done: int, total: int, source: str) -> None:
                if done >= 3:
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                library.scan(expand_sources([folder]), progress=stop, batch_size=1)
            pending = library.store.item_counts().pending
            assert 0 < pending < len(PEOPLE) * PER_PERSON + 1
        finally:
            library.close()
    with FaceLens(gallery=url, key_file=key) as lens:  # as after a restart
        library = lens.library()
        try:
            resumed = library.scan([])
            assert resumed.processed == pending
            counts = library.store.item_counts()
            assert (counts.done, counts.failed, counts.pending) == (len(PEOPLE) * PER_PERSON, 1, 0)
            assert library.store.stats()["ungrouped"] == 0
        finally:
            library.close()


def _database_files(server: PostgresServer, url: str) -> list[Path]:
    """The files of ``url``'s database in the server's data folder."""
    (data_dir,) = _rows(url, "SHOW data_directory")[0]
    (oid,) = _rows(url, "SELECT oid FROM pg_database WHERE datname = current_database()")[0]
    return [p for p in (Path(data_dir) / "base" / str(oid)).iterdir() if p.is_file()]


def _found(server: PostgresServer, url: str, pieces: list[bytes]) -> int:
    """How many of ``pieces`` some file of the database holds, after a checkpoint."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CHECKPOINT")  # dirty pages to disk, dropped files unlinked
    raw = [path.read_bytes() for path in _database_files(server, url)]
    return sum(any(piece in data for data in raw) for piece in pieces)


def test_erasing_a_person_leaves_no_library_rows_or_bytes(
    setup: tuple[str, Path, Path], postgres_server: PostgresServer
) -> None:
    url, key, folder = setup
    with FaceLens(gallery=url, key_file=key) as lens:
        library = lens.library()
        try:
            library.scan(expand_sources([folder]))
            group = _group_of(library, "Benjamin_Netanyahu")
            library.name(group, "Bibi Erased")
            found = library.appearances("Bibi Erased", lens.operating_point(), lens.calibration)
            library.reject_appearance("Bibi Erased", found[-1].face)
            theirs = [f.id for f in library.store.faces(group_id=group)]
        finally:
            library.close()
        sealed = _rows(
            url, "SELECT vector, crop FROM facelens.library_faces WHERE id = ANY(%s)", theirs
        )
        pieces = [bytes(v)[40:104] for v, _ in sealed] + [bytes(c)[40:104] for _, c in sealed]
        assert _found(postgres_server, url, pieces) == len(pieces)  # on disk before erasure
        lens.erase("Bibi Erased")
    assert _rows(url, "SELECT id FROM facelens.library_faces WHERE id = ANY(%s)", theirs) == []
    assert _rows(url, "SELECT 1 FROM facelens.library_groups WHERE name = 'Bibi Erased'") == []
    assert _rows(url, "SELECT 1 FROM facelens.library_not_person") == []
    assert _rows(url, "SELECT 1 FROM facelens.library_undo") == []
    logged = _rows(url, "SELECT detail FROM facelens.library_corrections")
    assert logged and not any("Bibi Erased" in d for (d,) in logged)
    assert _rows(url, "SELECT 1 FROM facelens.people WHERE name = 'Bibi Erased'") == []
    # The tables were rewritten: no live file of the database holds those bytes.
    assert _found(postgres_server, url, [*pieces, b"Bibi Erased"]) == 0


def test_cli_ingest_cluster_and_search_use_the_gallerys_database(
    setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from facelens.cli.main import cli

    url, key, folder = setup
    base = ["--gallery", url, "--key-file", str(key)]
    ingested = CliRunner().invoke(cli, [*base, "ingest", str(folder), "--json"])
    assert ingested.exit_code == 1, ingested.output  # the broken file is a failed item
    report = json.loads(ingested.output)
    assert report["processed"] == len(PEOPLE) * PER_PERSON + 1 and report["failed"] == 1
    assert "postgresql://" in report["library"]
    shown = CliRunner().invoke(cli, [*base, "cluster", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["stats"]["photos"] == len(PEOPLE) * PER_PERSON
    probe = str(sorted((data_path("lfw/images_deepfunneled") / PEOPLE[0]).glob("*.jpg"))[-1])
    found = CliRunner().invoke(cli, [*base, "search", probe, "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["appearances"]
    assert hits and all(PEOPLE[0] in a["source"] for a in hits)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.key", "photos"]


def test_the_library_api_works_on_the_gallerys_database(
    setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from facelens.service.app import create_app
    from facelens.service.settings import ServiceSettings
    from tests.test_library_service import _keys, _scan

    url, key, folder = setup
    settings = ServiceSettings(
        gallery=url,
        service_dir=str(tmp_path / "service"),
        key_file=str(key),
        library_roots=[str(folder.parent)],
        analysis_slots=1,
    )
    keys = _keys(settings)
    query, enroll = {"X-API-Key": keys["query"]}, {"X-API-Key": keys["enroll"]}
    with TestClient(create_app(settings)) as client:
        job = _scan(client, enroll, "photos")
        assert job["state"] == "done", job
        assert job["result"]["summary"]["processed"] == len(PEOPLE) * PER_PERSON + 1
        stats = client.get("/api/library", headers=query).json()
        assert stats["library"] == "the gallery's database"
        assert (stats["done"], stats["failed"], stats["pending"]) == (
            len(PEOPLE) * PER_PERSON,
            1,
            0,
        )
        groups = client.get("/api/library/groups", params={"limit": 3}, headers=query).json()
        crop = client.get(groups[0]["samples"][0]["crop_url"], headers=query)
        assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
        first = client.get(f"/api/library/groups/{groups[0]['id']}", headers=query).json()
        person = Path(first["faces"][0]["source"]).parent.name
        named = client.post(
            f"/api/library/groups/{groups[0]['id']}/name", json={"name": "Ann"}, headers=enroll
        )
        assert named.status_code == 200, named.text
        shown = client.get("/api/people/Ann/appearances", headers=query).json()
        assert len(shown) >= len(first["faces"])
        assert all(person in a["source"] and a["time"] is None for a in shown)
        probe = sorted((data_path("lfw/images_deepfunneled") / person).glob("*.jpg"))[-1]
        searched = client.post(
            "/api/library/search",
            files={"photo": (probe.name, probe.read_bytes(), "image/jpeg")},
            headers=query,
        )
        assert searched.status_code == 200, searched.text
        hits = [a for a in searched.json()["appearances"] if a["match"]]
        assert hits and all(person in a["source"] for a in hits)
    names = _rows(url, "SELECT name FROM facelens.library_groups WHERE name IS NOT NULL")
    assert names == [("Ann",)]


def test_exclusive_holds_queue_across_connections(postgres_url: str) -> None:
    """Two stores (as two server processes) on one library take turns in ``exclusive``."""
    import threading

    first = PostgresLibraryStore(postgres_url, "any-model")
    second = PostgresLibraryStore(postgres_url, "any-model")
    order: list[str] = []
    holding = threading.Event()

    def later() -> None:
        holding.wait()
        with second.exclusive():
            order.append("second")

    thread = threading.Thread(target=later)
    try:
        with first.exclusive(), first.exclusive():  # nested holds are fine
            thread.start()
            holding.set()
            thread.join(timeout=1.0)  # it cannot get in while the first holds
            assert thread.is_alive()
            order.append("first")
        thread.join()
        assert order == ["first", "second"]
    finally:
        first.close()
        second.close()


def test_one_factory_picks_where_the_library_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACELENS_LIBRARY", raising=False)
    url = "postgresql://facelens@db.example:5432/faces"
    assert library_location(url) == url  # the gallery's database
    assert library_location(tmp_path / "people.db") == tmp_path / "people.library.db"
    assert library_location(url, tmp_path / "own.db") == tmp_path / "own.db"
    monkeypatch.setenv("FACELENS_LIBRARY", str(tmp_path / "env.db"))
    assert library_location(url) == tmp_path / "env.db"


def test_corrections_undo_and_concurrent_naming(setup: tuple[str, Path, Path]) -> None:
    import threading

    url, key, folder = setup
    with FaceLens(gallery=url, key_file=key) as lens, FaceLens(gallery=url, key_file=key) as other:
        library, second = lens.library(), other.library()
        try:
            library.scan(expand_sources([folder]))
            albert = _group_of(library, "Albert_Costa")
            angela = _group_of(library, "Angela_Bassett")
            sizes = library.store.group(albert).faces, library.store.group(angela).faces
            merged = library.merge([albert, angela])["group"]
            assert library.store.group(merged).faces == sum(sizes)
            assert library.undo()["undone"] == "merge"
            assert (library.store.group(albert).faces, library.store.group(angela).faces) == sizes
            leaving = library.store.faces(group_id=albert)[-1].id
            library.reject([leaving])
            assert library.store.faces([leaving])[0].group_id != albert
            assert library.store.links("cannot")
            library.hide(angela)
            assert angela not in {g.id for g in library.groups_page(0, 50)[1]}
            assert angela in {g.id for g in library.groups_page(0, 50, hidden=True)[1]}
            assert library.regroup(rebuild=True).faces_placed >= 0
            assert {e["action"] for e in library.store.corrections()} >= {"merge", "reject"}
            # A split, undone; a face moved to a person, undone (the undo record survives).
            albert_faces = [f.id for f in library.store.faces(group_id=albert)]
            new = library.split(albert, albert_faces[:1])["new_group"]
            assert library.store.faces(albert_faces[:1])[0].group_id == new
            assert library.undo()["undone"] == "split"
            moved = library.move_to_person(albert_faces[:1], "Robert")
            assert library.store.group(moved["group"]).name == "Robert"
            assert library.undo()["undone"] == "move"
            assert library.store.faces(albert_faces[:1])[0].group_id == albert
            # Two processes naming one group at once end with one consistent result.
            bibi = _group_of(library, "Benjamin_Netanyahu")
            errors: list[BaseException] = []

            def name(target: Library, who: str) -> None:
                try:
                    target.name(bibi, who)
                except BaseException as error:  # recorded for the assertion
                    errors.append(error)

            threads = [
                threading.Thread(target=name, args=(library, "Ann")),
                threading.Thread(target=name, args=(second, "Bea")),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            final = library.store.group(bibi).name
            assert final in ("Ann", "Bea") and not errors
            assert final in {p.name for p in lens.gallery.list_people()}
            templates = lens.gallery.get_person(final).templates
            assert templates == min(library.store.group(bibi).faces, 8)
        finally:
            library.close()
            second.close()
