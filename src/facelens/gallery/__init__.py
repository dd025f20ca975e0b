"""Where known people live: the store protocol, the SQLite default, PostgreSQL, and resolution.

A gallery location is a file path (SQLite, the embedded default) or a
``postgresql://`` URL (:mod:`facelens.gallery.postgres`, needs the ``postgres``
extra); :func:`open_gallery` and :func:`stored_model_id` take either.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from facelens import settings
from facelens.errors import GalleryError
from facelens.gallery.protection import GalleryCipher, resolve_gallery_key
from facelens.gallery.sqlite import SQLiteGallery
from facelens.gallery.sqlite import stored_model_id as sqlite_stored_model_id
from facelens.gallery.store import GalleryStore, NewTemplate, TemplateMatrix

GALLERY_ENV = settings.GALLERY.name
POSTGRES_URL_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """True when ``location`` is a PostgreSQL URL rather than a file path."""
    return isinstance(location, str) and location.startswith(POSTGRES_URL_SCHEMES)


def resolve_gallery(location: str | Path | None = None) -> str | Path:
    """The gallery to open: a PostgreSQL URL (given or in ``$FACELENS_GALLERY``) unchanged,
    else the file :func:`resolve_gallery_path` finds."""
    chosen = location or settings.gallery()
    if isinstance(chosen, str) and is_postgres_url(chosen):
        return chosen
    return resolve_gallery_path(location)


def stored_model_id(location: str | Path) -> str | None:
    """The embedder id a gallery (file or PostgreSQL URL) was made with; None if it has none yet."""
    if isinstance(location, str) and is_postgres_url(location):
        from facelens.gallery.postgres import stored_model_id as postgres_stored_model_id

        return postgres_stored_model_id(location)
    return sqlite_stored_model_id(Path(location))


def resolve_gallery_path(path: str | Path | None = None) -> Path:
    """The gallery file: ``path`` if given, else ``$FACELENS_GALLERY``, else the user data folder.

    Raises :class:`GalleryError` for a PostgreSQL URL (it is no file): callers that
    can open either kind use :func:`resolve_gallery`.
    """
    chosen = path or settings.gallery()
    if isinstance(chosen, str) and is_postgres_url(chosen):
        raise GalleryError(
            "this needs a gallery file, and the gallery given is a PostgreSQL URL; "
            "use a file gallery (--gallery PATH) for it"
        )
    if path:
        return Path(path).expanduser()
    configured = settings.gallery()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("facelens")) / "gallery.db"


def open_gallery(
    path: str | Path | None,
    model_id: str,
    *,
    key_file: str | Path | None = None,
    cipher: GalleryCipher | None = None,
) -> GalleryStore:
    """Open (or create) the gallery at ``path`` (file or ``postgresql://`` URL) for ``model_id``.

    The template key is ``cipher`` if given, else the one :func:`resolve_gallery_key`
    finds (``key_file``, ``$FACELENS_GALLERY_KEY_FILE``, ``$FACELENS_GALLERY_KEY``).
    """
    key = cipher if cipher is not None else resolve_gallery_key(key_file)
    location = resolve_gallery(path)
    if isinstance(location, str):
        from facelens.gallery.postgres import PostgresGallery

        return PostgresGallery(location, model_id, cipher=key)
    return SQLiteGallery(location, model_id, cipher=key)


__all__ = [
    "GALLERY_ENV",
    "GalleryCipher",
    "GalleryStore",
    "NewTemplate",
    "SQLiteGallery",
    "TemplateMatrix",
    "is_postgres_url",
    "open_gallery",
    "resolve_gallery",
    "resolve_gallery_key",
    "resolve_gallery_path",
    "stored_model_id",
]
