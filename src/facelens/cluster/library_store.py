"""What a library store is, and the one place that picks it.

The library (items scanned, faces, groups, corrections; see
:mod:`facelens.cluster.store`) lives where the gallery lives:

* a SQLite gallery (or an explicit file: ``--index``, ``$FACELENS_LIBRARY``,
  ``serve --library``): :class:`~facelens.cluster.store.ClusterStore`, the
  file ``<gallery stem>.library.db`` beside it;
* a PostgreSQL gallery: :class:`~facelens.cluster.postgres_store.PostgresLibraryStore`,
  tables ``facelens.library_*`` in the gallery's own database.

Both satisfy :class:`LibraryStore`, the small protocol that the clustering
engine, the corrections, :class:`~facelens.ingest.library.Library`, the CLI
and the service use; :func:`open_library_store` is the only place that
chooses between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from facelens import settings
from facelens.gallery import is_postgres_url, resolve_gallery
from facelens.gallery.protection import GalleryCipher
from facelens.types import FloatArray

if TYPE_CHECKING:  # the records live with the SQLite store, which imports this module
    from facelens.cluster.store import (
        FaceMatrix,
        FaceRecord,
        GroupRecord,
        ItemRecord,
        ItemState,
        ItemTally,
        NewFace,
    )

__all__ = [
    "LibraryStore",
    "LinkKind",
    "Transaction",
    "library_exists",
    "library_location",
    "open_library_store",
]

LinkKind = Literal["must", "cannot"]
"""A constraint between two faces: the same person, or different people."""


class Transaction(Protocol):
    """One open write transaction of a library store (from :meth:`LibraryStore.write`).

    Opaque to callers: they only hand it back to the same store's methods.
    """


class LibraryStore(Protocol):
    """The library's storage, SQLite or PostgreSQL (see the module docstring).

    Methods that take a :class:`Transaction` change rows inside the caller's
    ``with store.write() as db:`` block; the others are one read or one
    transaction each. Face boxes are in pixels, times in seconds.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def encrypted(self) -> bool: ...

    @property
    def label(self) -> str:
        """Where the library is, for people (a file path, or the redacted database URL)."""
        ...

    @property
    def public_name(self) -> str:
        """A short name that reveals no server path (a file's base name)."""
        ...

    def write(self) -> AbstractContextManager[Transaction]: ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Held for a multi-step change: one holder across every process at a time."""
        ...

    def close(self) -> None: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    # items and faces
    def has_photo(self, sha256: str) -> bool: ...

    def add_photo(
        self, source: str, sha256: str, width: int, height: int, faces: list[NewFace]
    ) -> list[int]: ...

    def register_items(self, items: Iterable[tuple[str, str]]) -> int: ...

    def pending_items(self, limit: int | None = None) -> list[tuple[str, str]]: ...

    def retry_failed(self) -> int: ...

    def record_item(
        self,
        source: str,
        *,
        sha256: str | None = None,
        width: int = 0,
        height: int = 0,
        faces: list[NewFace] | None = None,
        frames: int | None = None,
        error: str | None = None,
    ) -> list[int]: ...

    def item_counts(self) -> ItemTally: ...

    def items(self, state: ItemState | None = None, limit: int = -1) -> list[ItemRecord]: ...

    def item(self, item_id: int) -> ItemRecord: ...

    def face_matrix(self) -> FaceMatrix: ...

    def face_version(self) -> tuple[int, int]:
        """``(faces, highest face id)``: changes whenever faces are added or erased."""
        ...

    def faces(
        self, face_ids: Iterable[int] | None = None, group_id: int | None = None
    ) -> list[FaceRecord]: ...

    def crop(self, face_id: int) -> bytes | None: ...

    def vectors(self, face_ids: list[int]) -> FloatArray: ...

    def set_enrolled(
        self,
        db: Transaction,
        face_ids: list[int],
        template_ids: list[int | None],
        name: str | None,
    ) -> None: ...

    def rename_enrolled(self, db: Transaction, old: str, new: str) -> None: ...

    # groups
    def groups(self) -> list[GroupRecord]: ...

    def unnamed_groups(
        self, offset: int = 0, limit: int = 50, *, hidden: bool = False
    ) -> tuple[int, list[GroupRecord]]: ...

    def sample_faces(self, group_id: int, count: int) -> list[int]: ...

    def set_hidden(self, db: Transaction, group_id: int, hidden: bool) -> None: ...

    def group(self, group_id: int) -> GroupRecord: ...

    def group_named(self, name: str) -> GroupRecord | None: ...

    def new_group(self, db: Transaction) -> int: ...

    def assign(self, db: Transaction, group_id: int | None, face_ids: Iterable[int]) -> None: ...

    def forget_group(self, group_id: int) -> int: ...

    def forget_person(self, name: str) -> int: ...

    def add_not_person(self, db: Transaction, face_id: int, name: str) -> None: ...

    def remove_not_person(self, db: Transaction, face_ids: Iterable[int], name: str) -> None: ...

    def not_person(self, name: str) -> set[int]: ...

    def save_undo(self, db: Transaction, action: str) -> None: ...

    def undo_record(self) -> tuple[str, str, str] | None: ...

    def put_undo_record(self, db: Transaction, record: tuple[str, str, str]) -> None: ...

    def restore_undo(self) -> str | None: ...

    def drop_empty_groups(self, db: Transaction) -> None: ...

    def set_name(self, db: Transaction, group_id: int, name: str | None) -> None: ...

    # constraints and the correction log
    def links(self, kind: LinkKind) -> list[tuple[int, int]]: ...

    def add_links(
        self, db: Transaction, kind: LinkKind, pairs: Iterable[tuple[int, int]]
    ) -> None: ...

    def remove_links_within(self, db: Transaction, kind: LinkKind, face_ids: list[int]) -> None: ...

    def remove_links_of(self, db: Transaction, kind: LinkKind, face_id: int) -> None: ...

    def log(self, db: Transaction, action: str, detail: dict[str, Any]) -> None: ...

    def corrections(self) -> list[dict[str, Any]]: ...

    def stats(self) -> dict[str, int]: ...


def library_location(gallery: str | Path | None, path: str | Path | None = None) -> Path | str:
    """Where the library of ``gallery`` is: ``path`` when given, else ``$FACELENS_LIBRARY``,
    else the gallery's PostgreSQL URL for a PostgreSQL gallery (its tables are in the
    gallery's database), else the file beside the gallery
    (:func:`~facelens.cluster.clusterer.default_index_path`)."""
    if path is not None:
        return Path(path).expanduser()
    configured = settings.library()
    if configured:
        return configured
    location = resolve_gallery(gallery)
    if isinstance(location, str) and is_postgres_url(location):
        return location
    from facelens.cluster.clusterer import default_index_path

    return default_index_path(location)


def library_exists(location: Path | str) -> bool:
    """True when a library is at ``location`` (a file there, or a database that has the
    library's tables)."""
    if isinstance(location, str) and is_postgres_url(location):
        from facelens.cluster.postgres_store import postgres_library_exists

        return postgres_library_exists(location)
    return Path(location).is_file()


def open_library_store(
    location: Path | str, model_id: str, *, cipher: GalleryCipher | None = None
) -> LibraryStore:
    """The library at ``location`` (from :func:`library_location`), for ``model_id``'s
    templates, sealed with the gallery's key ``cipher`` when one is in force."""
    if isinstance(location, str) and is_postgres_url(location):
        from facelens.cluster.postgres_store import PostgresLibraryStore

        return PostgresLibraryStore(location, model_id, cipher=cipher)
    from facelens.cluster.store import ClusterStore

    return ClusterStore(location, model_id, cipher=cipher)
