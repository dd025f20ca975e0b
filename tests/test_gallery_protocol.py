"""FaceLens searches any :class:`GalleryStore` by what the protocol says, not by its class.

A store that is neither ``SQLiteGallery`` nor ``PostgresGallery`` (here: one that wraps a
SQLite gallery, as a logging or caching layer would) is searched the way its properties
say: ``path`` puts the code index beside its file, ``search_server`` proposes candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facelens.api import FaceLens
from facelens.gallery import GalleryStore, SQLiteGallery
from facelens.gallery.store import SearchServer, TemplateMatrix
from facelens.index.gallery_index import index_path_for
from facelens.models import registry
from facelens.types import FloatArray


class WrappedGallery:
    """Every call goes to a SQLite gallery; ``path`` and ``search_server`` are chosen."""

    def __init__(
        self, inner: SQLiteGallery, path: Path | None, server: SearchServer | None = None
    ) -> None:
        self.inner = inner
        self.path = path
        self.search_server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CountingServer:
    """A search server over a SQLite gallery: proposes every template, counts its calls."""

    encrypted = False

    def __init__(self, inner: SQLiteGallery) -> None:
        self.inner = inner
        self.calls = 0

    def candidate_matrix(self, probes: FloatArray, k: int = 32) -> TemplateMatrix:
        self.calls += 1
        return self.inner.template_matrix()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _lens(path: Path, store: WrappedGallery) -> FaceLens:
    lens = FaceLens(gallery=path, embedder=registry.DEFAULT_EMBEDDER)
    gallery: GalleryStore = store  # type: ignore[assignment]  # delegation: checked at run time
    lens._gallery = gallery  # a store FaceLens did not open itself
    return lens


def test_a_store_with_a_file_gets_its_code_index_beside_it(tmp_path: Path) -> None:
    inner = SQLiteGallery(tmp_path / "inner.db", registry.DEFAULT_EMBEDDER)
    elsewhere = tmp_path / "wrapped.db"
    with _lens(tmp_path / "inner.db", WrappedGallery(inner, elsewhere)) as lens:
        index = lens.gallery_search.index
        assert index is not None
        assert index.path == index_path_for(elsewhere)
        assert index.persist  # in the clear: kept on disk


def test_a_store_without_a_file_is_searched_in_memory(tmp_path: Path) -> None:
    inner = SQLiteGallery(tmp_path / "inner.db", registry.DEFAULT_EMBEDDER)
    with _lens(tmp_path / "inner.db", WrappedGallery(inner, None)) as lens:
        assert lens.gallery_search.index is None  # in the clear, no file, no server: exact search


def test_a_stores_search_server_proposes_the_candidates(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    inner = SQLiteGallery(tmp_path / "inner.db", registry.DEFAULT_EMBEDDER)
    server = CountingServer(inner)
    with _lens(tmp_path / "inner.db", WrappedGallery(inner, None, server)) as lens:
        assert len(lens.enroll("Eileen", [astronaut]).accepted) == 1
        [match] = lens.identify(astronaut)
    assert match.identity == "Eileen"
    assert server.calls >= 1  # identify asked the server, not the whole gallery
