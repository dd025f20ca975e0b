"""Where known people live: the store protocol, the SQLite default, and path resolution."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from facelens.gallery.protection import GalleryCipher, resolve_gallery_key
from facelens.gallery.sqlite import SQLiteGallery, stored_model_id
from facelens.gallery.store import GalleryStore, NewTemplate, TemplateMatrix

GALLERY_ENV = "FACELENS_GALLERY"


def resolve_gallery_path(path: str | Path | None = None) -> Path:
    """The gallery file: ``path`` if given, else ``$FACELENS_GALLERY``, else the user data folder."""
    if path:
        return Path(path).expanduser()
    configured = os.environ.get(GALLERY_ENV)
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
    """Open (or create) the gallery at ``path`` for templates of ``model_id``.

    The template key is ``cipher`` if given, else the one :func:`resolve_gallery_key`
    finds (``key_file``, ``$FACELENS_GALLERY_KEY_FILE``, ``$FACELENS_GALLERY_KEY``).
    """
    key = cipher if cipher is not None else resolve_gallery_key(key_file)
    return SQLiteGallery(resolve_gallery_path(path), model_id, cipher=key)


__all__ = [
    "GALLERY_ENV",
    "GalleryCipher",
    "GalleryStore",
    "NewTemplate",
    "SQLiteGallery",
    "TemplateMatrix",
    "open_gallery",
    "resolve_gallery_key",
    "resolve_gallery_path",
    "stored_model_id",
]
