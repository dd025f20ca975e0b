"""Expand user-given paths (files and folders) into image files, in a stable order."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)
"""File endings taken when walking a folder. Files named explicitly are always tried."""


def expand_image_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders walked recursively for image files, sorted by path.

    A path that does not exist is kept, so that the caller reports it as an
    error for that item instead of silently dropping it.
    """
    result: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            result.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        else:
            result.append(path)
    return result
