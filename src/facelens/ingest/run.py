"""The ingest driver: register items, hand pending ones to an executor, record each result.

The driver is the only writer: it registers the work items in the state file
(:class:`ScanIndex`), takes the pending ones, has them processed in batches
(by :class:`LocalExecutor` in this process, or :class:`RayExecutor` on a Ray
cluster: same :class:`Processor` code either way) and records every result
as it arrives, one transaction per item. Interrupt it at any point and run it
again: it continues with the items still pending.

Into the gallery (``target="gallery"``), each photo's one usable face is
enrolled under the name of the photo's folder; the state file then records
only the item's state (no template leaves the gallery). A photo enrolled just
before an interruption, but not yet marked done, is recognised on the next run
by its source and not enrolled twice. With a threshold (``Screen``), each face
is screened as ``facelens enroll`` screens it (:mod:`facelens.match.screen`): the
same face already in the gallery is refused as a duplicate, and a face another
person matches at the threshold is refused unless forced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from facelens.errors import InvalidNameError, PersonNotFoundError
from facelens.gallery.store import GalleryStore, NewTemplate, clean_name
from facelens.ingest.process import ItemResult, ProcessOptions, Processor, batches
from facelens.ingest.scan_index import ItemCounts, ScanIndex
from facelens.ingest.sources import WorkItem
from facelens.match.screen import screen_template
from facelens.pipeline.faces import FacePipeline

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Executor",
    "IngestSummary",
    "LocalExecutor",
    "Screen",
    "enroll_result",
    "run_ingest",
]

DEFAULT_BATCH_SIZE = 8


class Executor(Protocol):
    """Processes batches of items somewhere; yields each batch's results as they complete."""

    def map(self, work: Iterator[list[WorkItem]]) -> Iterator[list[ItemResult]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Processes batches in this process, one after another (the pipeline uses threads)."""

    def __init__(self, options: ProcessOptions, pipeline: FacePipeline | None = None) -> None:
        self.processor = Processor(options, pipeline)

    def map(self, work: Iterator[list[WorkItem]]) -> Iterator[list[ItemResult]]:
        for batch in work:
            yield self.processor.run([(item, None) for item in batch])

    def close(self) -> None:
        pass


@dataclass
class IngestSummary:
    """What one run did (``counts`` is the state of the whole collection afterwards)."""

    registered: int  # items new to the state file in this run
    processed: int  # items processed in this run
    failed: int  # of them, failed
    faces: int  # faces recorded in this run
    seconds: float
    counts: ItemCounts

    @property
    def items_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "registered": self.registered,
            "processed": self.processed,
            "failed": self.failed,
            "faces": self.faces,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 3),
            "pending": self.counts.pending,
            "done": self.counts.done,
            "failed_in_all": self.counts.failed,
        }


def run_ingest(
    state: ScanIndex,
    items: list[WorkItem],
    executor: Executor,
    *,
    gallery: GalleryStore | None = None,
    screen: Screen | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
) -> IngestSummary:
    """Register ``items``, process every pending item (at most ``limit``), record each result.

    With ``gallery``, results are enrolled into it (see the module docstring);
    otherwise their faces go into the scan index ``state``.
    """
    started = time.perf_counter()
    registered = state.add_items(items)
    pending = state.pending(limit)
    processed = failed = faces = 0
    for results in executor.map(batches(pending, batch_size)):
        for found in results:
            result = found if gallery is None else enroll_result(gallery, found, screen)
            state.record(result)
            processed += 1
            failed += result.error is not None
            faces += found.count if result.error is None else 0
            if on_result is not None:
                on_result(result)
    return IngestSummary(
        registered, processed, failed, faces, time.perf_counter() - started, state.counts()
    )


@dataclass(frozen=True)
class Screen:
    """How ``ingest --into-gallery`` screens each face (see the module docstring):
    ``threshold`` is the operating point's cosine; ``force`` saves a face another person
    matches anyway."""

    threshold: float
    force: bool = False


def enroll_result(
    gallery: GalleryStore, result: ItemResult, screen: Screen | None = None
) -> ItemResult:
    """Enroll a photo's face under its folder's name; the result to record (without template)."""
    if result.error is not None or result.count == 0:
        return result if result.error else replace(result, error="no usable face")
    name = Path(result.source).parent.name
    try:
        known = {t.source for t in gallery.list_templates(name)}
    except PersonNotFoundError:
        try:
            clean_name(name)
        except InvalidNameError as error:  # a folder name the name rule refuses: this item only
            refused = f"folder name {name!r} cannot be a person's name: {error}"
            return replace(_without_faces(result), error=refused)
        known = set()
    if result.source not in known and screen is not None:
        refusal = _screened(gallery, name, result.vectors[0], screen)
        if refusal is not None:
            code, reason = refusal
            return replace(_without_faces(result), error=reason, error_code=code)
    if result.source not in known:
        gallery.add_templates(
            name,
            [
                NewTemplate(
                    result.vectors[0], gallery.model_id, result.source, float(result.qualities[0])
                )
            ],
            create=True,
        )
    return _without_faces(result)


def _screened(
    gallery: GalleryStore, name: str, vector: np.ndarray, screen: Screen
) -> tuple[str, str] | None:
    """``(code, reason)`` when the gallery refuses this face for ``name``, else None."""
    found = screen_template(vector, gallery.template_matrix(), screen.threshold)
    if found.duplicate_of is not None:
        return "duplicate", (
            f"the same face is already enrolled for {found.duplicate_of!r}: a duplicate adds "
            "nothing"
        )
    if found.matches not in (None, name) and not screen.force:
        return "matches_other_person", (
            f"this face matches {found.matches!r} (score {found.score:.3f}, threshold "
            f"{screen.threshold:.3f}) better than {name!r}: not saved unless forced (--force)"
        )
    return None


def _without_faces(result: ItemResult) -> ItemResult:
    """``result`` with no template, box or score left (what the state file keeps)."""
    return replace(
        result,
        vectors=np.zeros((0, result.vectors.shape[1]), np.float32),
        boxes=result.boxes[:0],
        detector_scores=result.detector_scores[:0],
        qualities=result.qualities[:0],
        frame_index=result.frame_index[:0],
        time=result.time[:0],
    )
