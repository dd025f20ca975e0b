"""What only the PostgreSQL gallery has: migrations, server-side HNSW search, encrypted
templates in a shared database, cache invalidation across connections, the audit table,
and the command line pointed at a URL. Runs against the session's real server (conftest)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest

from facelens.errors import (
    GalleryError,
    GalleryKeyMismatchError,
    GalleryKeyRequiredError,
    GalleryNotEncryptedError,
)
from facelens.gallery import NewTemplate, open_gallery, stored_model_id
from facelens.gallery.migrations import all_migrations
from facelens.gallery.postgres import PostgresAuditLog, PostgresGallery, redact_url
from facelens.gallery.protection import GalleryCipher
from facelens.models.registry import DEFAULT_EMBEDDER
from facelens.vectors import unit_rows
from tests.conftest import REPO, PostgresServer


def _templates(count: int, seed: int = 0, dimension: int = 128) -> list[NewTemplate]:
    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng.normal(size=(count, dimension))).astype(np.float32)
    return [
        NewTemplate(v, DEFAULT_EMBEDDER, f"photo-{seed}-{i}.jpg", 0.9, f"JPEG{seed}-{i}".encode())
        for i, v in enumerate(vectors)
    ]


def _open(url: str) -> None:
    PostgresGallery(url, DEFAULT_EMBEDDER).close()


def test_migrations_apply_once_even_when_processes_open_at_the_same_time(
    postgres_url: str,
) -> None:
    context = multiprocessing.get_context("spawn")
    openers = [context.Process(target=_open, args=(postgres_url,)) for _ in range(4)]
    for process in openers:
        process.start()
    for process in openers:
        process.join(120)
        assert process.exitcode == 0
    _open(postgres_url)  # and once more: nothing left to do
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(
            "SELECT version, name FROM facelens.schema_migrations ORDER BY version"
        ).fetchall()
        audit_columns = {
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'facelens' AND table_name = 'audit'"
            ).fetchall()
        }
    assert rows == [(m.version, m.name) for m in all_migrations()]
    assert {"at", "key_id", "action", "target", "detail", "outcome"} <= audit_columns


def test_hnsw_search_in_the_server_agrees_with_exact_search(postgres_url: str) -> None:
    gallery = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    for person in range(20):
        gallery.add_templates(f"person {person}", _templates(25, seed=person), create=True)
    with psycopg.connect(postgres_url) as db:
        index = db.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'templates_vector_hnsw'"
        ).fetchone()
    assert index is not None and "hnsw" in index[0] and "vector_cosine_ops" in index[0]
    matrix = gallery.template_matrix()
    queries = unit_rows(np.random.default_rng(99).normal(size=(30, 128))).astype(np.float32)
    agree = 0
    for query in queries:
        found = gallery.nearest(query, 5)
        scores = matrix.vectors @ query
        exact = matrix.template_ids[np.argsort(-scores)[:5]]
        assert [n.score for n in found] == sorted((n.score for n in found), reverse=True)
        assert found[0].name == matrix.names[int(found[0].person_id)]
        agree += int(found[0].template_id == exact[0])
        assert abs(found[0].score - float(scores.max())) < 1e-4 or found[0].template_id != exact[0]
    assert agree >= 28  # approximate, but not by much on 500 templates
    stored = matrix.vectors[123]
    assert gallery.nearest(stored, 1)[0].template_id == matrix.template_ids[123]
    # the candidates for identification: whole people, found by the server
    candidates = gallery.candidate_matrix(matrix.vectors[[0, 260]], k=3)
    owners = {int(matrix.person_ids[0]), int(matrix.person_ids[260])}
    assert owners <= set(candidates.names)
    for person in candidates.names:
        assert (candidates.person_ids == person).sum() == 25
    gallery.close()


def test_a_write_by_another_connection_refreshes_the_cached_matrix(postgres_url: str) -> None:
    reader = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    writer = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    writer.add_templates("first", _templates(2), create=True)
    assert len(reader.template_matrix().vectors) == 2
    assert reader.template_matrix() is reader.template_matrix()  # cached while nothing changes
    writer.add_templates("second", _templates(3, seed=1), create=True)
    assert len(reader.template_matrix().vectors) == 5
    writer.erase_person("first")
    assert sorted(reader.template_matrix().names.values()) == ["second"]
    reader.close()
    writer.close()


def test_encrypted_gallery_keeps_no_template_or_crop_in_clear(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    cipher = GalleryCipher.generate()
    gallery = open_gallery(postgres_url, DEFAULT_EMBEDDER, cipher=cipher)
    templates = _templates(3, seed=5)
    ids = gallery.add_templates("Eileen Collins", templates, create=True)
    assert gallery.get_crop(ids[1]) == templates[1].crop_jpeg
    matrix = gallery.template_matrix()
    assert np.allclose(matrix.vectors, np.stack([t.vector for t in templates]))
    assert isinstance(gallery, PostgresGallery)
    assert gallery.nearest(templates[2].vector, 1)[0].template_id == ids[2]
    gallery.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CHECKPOINT")
        stored = db.execute(
            "SELECT vector, sealed_vector FROM facelens.templates ORDER BY id"
        ).fetchall()
        index = db.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'templates_vector_hnsw'"
        ).fetchone()
        path = db.execute("SELECT pg_relation_filepath('facelens.templates')").fetchone()
    assert all(vector is None and sealed for vector, sealed in stored)
    assert index is None  # nothing for the server to search: it only sees ciphertext
    assert path is not None
    on_disk = b"".join(f.read_bytes() for f in postgres_server.data_dir.glob(path[0] + "*"))
    raw = templates[0].vector.astype("<f4").tobytes()
    assert len(on_disk) > 0 and raw[:16] not in on_disk and raw[-16:] not in on_disk
    with pytest.raises(GalleryKeyRequiredError):
        open_gallery(postgres_url, DEFAULT_EMBEDDER)
    with pytest.raises(GalleryKeyMismatchError):
        open_gallery(postgres_url, DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())


def test_a_key_is_refused_for_a_gallery_that_holds_plaintext_templates(
    postgres_url: str,
) -> None:
    gallery = open_gallery(postgres_url, DEFAULT_EMBEDDER)
    gallery.add_templates("someone", _templates(1), create=True)
    gallery.close()
    with pytest.raises(GalleryNotEncryptedError):
        open_gallery(postgres_url, DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())


def test_templates_of_another_dimension_are_refused_and_nothing_is_written(
    postgres_url: str,
) -> None:
    gallery = PostgresGallery(postgres_url, DEFAULT_EMBEDDER)
    gallery.add_templates("a", _templates(2), create=True)
    with pytest.raises(GalleryError, match="128-D"):
        gallery.add_templates("b", _templates(1, dimension=64), create=True)
    assert [p.name for p in gallery.list_people()] == ["a"]
    assert gallery.integrity_check() == "ok"
    gallery.close()


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = "postgresql://facelens:s3cret-pw@/nowhere?host=/nonexistent-socket-dir&connect_timeout=2"
    with pytest.raises(GalleryError) as caught:
        PostgresGallery(url, DEFAULT_EMBEDDER)
    assert "s3cret-pw" not in str(caught.value) and "***" in str(caught.value)
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"


def test_audit_log_in_the_database(postgres_url: str) -> None:
    log = PostgresAuditLog(postgres_url)
    log.record("enroll", key_id="k1", key_name="ops", role="admin", target="Ada", detail={"n": 2})
    log.record("erase", target="Ada", outcome="person_not_found")
    entries = log.entries()
    assert [e["action"] for e in entries] == ["enroll", "erase"]
    assert entries[0]["detail"] == {"n": 2} and entries[0]["key_name"] == "ops"
    assert entries[1]["outcome"] == "person_not_found" and entries[1]["key_id"] is None
    assert [e["action"] for e in log.entries(action="erase")] == ["erase"]
    log.close()


def test_the_command_line_on_a_postgresql_gallery(
    postgres_url: str, tmp_path: Path, astronaut: np.ndarray
) -> None:
    from PIL import Image

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    env = dict(os.environ, FACELENS_GALLERY=postgres_url)

    def facelens(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "facelens.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    facelens("enroll", "Eileen Collins", str(photo))
    people = json.loads(facelens("people", "list", "--json"))
    assert [(p["name"], p["templates"]) for p in people] == [("Eileen Collins", 1)]
    assert stored_model_id(postgres_url) == DEFAULT_EMBEDDER
    records = json.loads(facelens("identify", str(photo), "--json"))
    assert [f["identity"] for r in records for f in r["faces"]] == ["Eileen Collins"]
    facelens("people", "remove", "Eileen Collins")
    assert json.loads(facelens("people", "list", "--json")) == []


def test_quick_scrub_mode_erases_the_rows_and_a_bad_mode_is_refused(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELENS_POSTGRES_SCRUB", "vacuum")
    gallery = open_gallery(postgres_url, DEFAULT_EMBEDDER)
    gallery.add_templates("a", _templates(3), create=True)
    gallery.add_templates("b", _templates(2, seed=1), create=True)
    assert gallery.erase_person("a") == 3
    assert [p.name for p in gallery.list_people()] == ["b"]
    assert len(gallery.template_matrix().vectors) == 2
    gallery.close()
    monkeypatch.setenv("FACELENS_POSTGRES_SCRUB", "sometimes")
    with pytest.raises(GalleryError, match="FACELENS_POSTGRES_SCRUB"):
        open_gallery(postgres_url, DEFAULT_EMBEDDER)
