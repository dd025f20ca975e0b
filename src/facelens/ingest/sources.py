"""What to ingest: files, folders (walked recursively), file lists and videos, as work items.

A SOURCE is an image or video file, a folder (walked for both kinds, sorted),
or a file list written ``@list.txt`` (one path a line; blank lines and lines
starting with ``#`` ignored; relative paths are taken from the list's folder).
Each item is keyed by its absolute path, which is how a resumed run knows
what it has already done.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facelens.io.walk import IMAGE_SUFFIXES, walk_files

__all__ = ["VIDEO_SUFFIXES", "ItemKind", "WorkItem", "expand_sources", "kind_of"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})
"""File endings taken as videos (every sampled frame is searched for faces)."""

ItemKind = Literal["image", "video"]


@dataclass(frozen=True)
class WorkItem:
    """One file to process: ``source`` is its absolute path (the item's key)."""

    source: str
    kind: ItemKind


def kind_of(path: Path) -> ItemKind:
    """``video`` for the endings of :data:`VIDEO_SUFFIXES`, else ``image``."""
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def expand_sources(sources: Iterable[str | Path]) -> list[WorkItem]:
    """Work items for ``sources``, in a stable order, each file once.

    A path that does not exist, a folder that cannot be listed and a file list
    that cannot be read are kept, so that each is reported as that item's error
    instead of silently dropped.
    """
    items: list[WorkItem] = []
    seen: set[str] = set()
    for path in _paths(sources):
        source = str(path.expanduser().absolute())
        if source not in seen:
            seen.add(source)
            items.append(WorkItem(source, kind_of(path)))
    return items


def _paths(sources: Iterable[str | Path]) -> Iterable[Path]:
    wanted = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    for raw in sources:
        text = str(raw)
        if text.startswith("@"):
            listing = Path(text[1:])
            try:
                lines = listing.read_text().splitlines()
            except (OSError, UnicodeDecodeError):
                yield listing  # an unreadable list is one failed item: its error says why
                continue
            for line in lines:
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    path = Path(entry).expanduser()
                    yield path if path.is_absolute() else listing.parent / path
            continue
        path = Path(text)
        if path.is_dir():
            yield from walk_files(path, wanted)
        else:
            yield path
