"""Reading photos into the cluster index: every usable face, its template and its crop.

A photo is identified by the sha256 of its bytes: one read before (under any
path) is skipped. A photo that cannot be read is reported and the others go
on. Faces below ``min_quality`` (tiny, blurred, turned away) are counted but
not indexed: their templates would only pull look-alikes together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from facelens.cluster.library_store import LibraryStore
from facelens.cluster.store import NewFace
from facelens.errors import FaceLensError, ImageDecodeError
from facelens.io.image import open_user_file
from facelens.pipeline.faces import FacePipeline
from facelens.types import USABLE_QUALITY, ImageArray

__all__ = ["PhotoOutcome", "crop_jpeg", "file_sha256", "index_photos"]


@dataclass(frozen=True)
class PhotoOutcome:
    """What happened to one photo: indexed (with face counts), already known, or failed."""

    source: str
    status: str  # "indexed", "known" or "error"
    faces: int = 0  # faces indexed
    low_quality: int = 0  # faces found but below the quality floor
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source, "status": self.status}
        if self.status == "indexed":
            data.update({"faces": self.faces, "low_quality": self.low_quality})
        if self.error is not None:
            data["error"] = self.error
        return data


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks; a file that cannot be opened raises
    the :class:`FaceLensError` of :func:`facelens.io.image.open_user_file`."""
    digest = hashlib.sha256()
    with open_user_file(path) as handle:
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        except OSError as exc:
            raise ImageDecodeError(f"{path}: cannot be read ({exc.strerror})") from exc
    return digest.hexdigest()


def crop_jpeg(crop: ImageArray | None) -> bytes | None:
    """An RGB crop as JPEG bytes (quality 90), or ``None``."""
    if crop is None:
        return None
    ok, encoded = cv2.imencode(".jpg", crop[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return encoded.tobytes() if ok else None


def index_photos(
    pipeline: FacePipeline,
    store: LibraryStore,
    paths: list[Path],
    *,
    min_quality: float = USABLE_QUALITY,
    on_item: Callable[[PhotoOutcome], None] | None = None,
) -> list[PhotoOutcome]:
    """Index the faces of every photo not yet in ``store``; one outcome per path, in order."""
    outcomes: dict[int, PhotoOutcome] = {}
    digests: dict[int, str] = {}
    seen: set[str] = set()
    for position, path in enumerate(paths):
        try:
            digest = file_sha256(path)
        except FaceLensError as error:
            outcomes[position] = PhotoOutcome(str(path), "error", error=str(error))
            continue
        if digest in seen or store.has_photo(digest):
            outcomes[position] = PhotoOutcome(str(path), "known")
        else:
            seen.add(digest)
            digests[position] = digest
    for position in sorted(outcomes):
        if on_item:
            on_item(outcomes[position])
    to_read = sorted(digests)
    for position, result in zip(to_read, pipeline.detect_many(_paths(paths, to_read)), strict=True):
        if result.error is not None:
            outcome = PhotoOutcome(result.source, "error", error=str(result.error))
        else:
            kept = [f for f in result.faces if f.quality.value >= min_quality]
            store.add_photo(
                result.source,
                digests[position],
                result.width,
                result.height,
                [
                    NewFace(f.box, f.quality.value, f.template.vector, crop_jpeg(f.aligned))
                    for f in kept
                    if f.template is not None
                ],
            )
            outcome = PhotoOutcome(
                result.source, "indexed", len(kept), len(result.faces) - len(kept)
            )
        outcomes[position] = outcome
        if on_item:
            on_item(outcome)
    return [outcomes[i] for i in range(len(paths))]


def _paths(paths: list[Path], positions: list[int]) -> Iterator[Path]:
    return (paths[i] for i in positions)
