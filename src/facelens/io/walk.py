"""Expand user-given paths (files and folders) into image files, in a stable order."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "expand_image_paths", "walk_files"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)
"""File endings taken when walking a folder. Files named explicitly are always tried."""


def expand_image_paths(
    paths: Iterable[str | Path], suffixes: frozenset[str] = IMAGE_SUFFIXES
) -> list[Path]:
    """Files as given; folders walked recursively for files ending in ``suffixes``.

    A path that does not exist is kept, and so is a folder (the one given or
    one inside it) that cannot be listed, so that the caller reports it as an
    error for that item (see :func:`facelens.io.image.open_user_file`) instead
    of silently dropping it.
    """
    result: list[Path] = []
    for raw in paths:
        path = Path(raw)
        result.extend(walk_files(path, suffixes) if path.is_dir() else [path])
    return result


def walk_files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    """The files under ``folder`` ending in ``suffixes`` (any case), and the folders that
    could not be listed, sorted by path. Symbolic links to folders are not followed."""
    found: list[Path] = []

    def unlistable(error: OSError) -> None:
        found.append(Path(error.filename) if error.filename else folder)

    for root, _folders, files in os.walk(folder, onerror=unlistable):
        found.extend(Path(root, name) for name in files if Path(name).suffix.lower() in suffixes)
    return sorted(found)
