"""Biometric files are the owner's only (issue 13, item 11).

A realistic run (enroll, cluster, ingest, a code index, the service with a
job) under the common umask 022 must leave every file it made mode 0600 and
every folder 0700, the SQLite ``-wal``/``-shm`` included; opening a gallery
that others can read warns with the ``chmod`` that fixes it.
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from facelens.cli.main import cli
from facelens.gallery.sqlite import SQLiteGallery
from facelens.index.codes import CodeIndex
from facelens.index.gallery_index import index_path_for
from facelens.io.private_files import ExposedFileWarning
from facelens.service.app import create_app
from facelens.service.keys import KeyStore
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB


@pytest.fixture
def common_umask() -> Iterator[None]:
    """The umask most systems give users (022: new files 0644), restored afterwards."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def modes(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` (itself included), relative, with its permission bits."""
    found = {".": stat.S_IMODE(folder.lstat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_file_and_folder_of_a_realistic_run_is_private(
    tmp_path: Path, astronaut: np.ndarray, common_umask: None
) -> None:
    photos = tmp_path / "photos"  # the user's own folder: not facelens's to change
    photos.mkdir()
    for quality in (95, 80, 65):
        (photos / f"a{quality}.jpg").write_bytes(jpeg(astronaut, quality))
    state = tmp_path / "state"  # everything below is made by facelens
    gallery = state / "galleries" / "people.db"

    invoke("--gallery", str(gallery), "enroll", "Eileen", str(photos / "a95.jpg"))
    invoke("--gallery", str(gallery), "cluster", str(photos))
    invoke("ingest", str(photos), "--scan", str(state / "scan.db"), "--workers", "1")

    settings = ServiceSettings(gallery=str(gallery))
    store = StateDB(settings.state_db)
    key = KeyStore(store).create("modes", "admin")[1]
    store.close()
    headers = {"X-API-Key": key}
    with TestClient(create_app(settings)) as client:
        started = client.post(
            "/api/jobs/anonymize",
            files={"file": ("astronaut.jpg", jpeg(astronaut), "image/jpeg")},
            headers=headers,
        )
        assert started.status_code == 202, started.text
        for _ in range(600):
            job = client.get(f"/api/jobs/{started.json()['id']}", headers=headers).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert job["state"] == "done", job
        found = modes(state)  # while the service holds its databases open: -wal and -shm exist
    # the code index a gallery of 5,000 templates or more keeps beside it (the same save)
    codes = CodeIndex(128)
    codes.add(np.arange(700), np.random.default_rng(0).standard_normal((700, 128), np.float32))
    codes.save(index_path_for(gallery))
    found.update(modes(state))

    names = set(found)
    for made in (
        "galleries/people.db-wal",
        "galleries/people.db-shm",
        "galleries/people.library.db",
        "galleries/people.db.codes.npz",
        "galleries/people.db.service/service.db-wal",
        "scan.db",
    ):
        assert made in names, sorted(names)
    job_files = [name for name in names if "/jobs/" in name and name.endswith((".jpg", ".json"))]
    assert len(job_files) >= 2, sorted(names)  # the upload and the job's output
    exposed = {
        name: f"{mode:04o}"
        for name, mode in found.items()
        if mode != (0o700 if (state / name).is_dir() else 0o600)
    }
    assert not exposed, exposed


def test_a_gallery_others_can_read_is_opened_with_a_warning_naming_the_chmod(
    tmp_path: Path,
) -> None:
    path = tmp_path / "people.db"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExposedFileWarning)  # a new gallery: no warning
        SQLiteGallery(path, "test-model").close()
    os.chmod(path, 0o644)
    with pytest.warns(ExposedFileWarning, match=r"chmod 600 \S*people\.db") as caught:
        SQLiteGallery(path, "test-model").close()
    assert "0644" in str(caught[0].message)
    os.chmod(path, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExposedFileWarning)
        SQLiteGallery(path, "test-model").close()


def test_the_cli_says_once_on_stderr_that_the_gallery_is_open_to_others(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    gallery = tmp_path / "people.db"
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg(astronaut))
    invoke("--gallery", str(gallery), "enroll", "Eileen", str(photo))
    os.chmod(gallery, 0o644)
    result = CliRunner().invoke(cli, ["--gallery", str(gallery), "people", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)  # stdout stays clean JSON
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert "chmod 600" in lines[0] and str(gallery) in lines[0]
