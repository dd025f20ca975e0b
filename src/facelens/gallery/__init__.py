"""Where known people live: the store protocol, the SQLite default, and path resolution."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

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


def open_gallery(path: str | Path | None, model_id: str) -> GalleryStore:
    """Open (or create) the gallery at ``path`` for templates of ``model_id``."""
    return SQLiteGallery(resolve_gallery_path(path), model_id)


__all__ = [
    "GALLERY_ENV",
    "GalleryStore",
    "NewTemplate",
    "SQLiteGallery",
    "TemplateMatrix",
    "open_gallery",
    "resolve_gallery_path",
    "stored_model_id",
]
