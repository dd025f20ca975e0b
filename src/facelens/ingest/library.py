"""The library: every photo and video scanned beside a gallery, its faces, groups and people.

One store where the gallery is (:mod:`facelens.cluster.library_store`: a SQLite
file beside a SQLite gallery, tables in a PostgreSQL gallery's database) holds
every item scanned with its state (``pending``, ``done``, ``failed`` and why),
every usable face found (box, video frame and time, quality, template, crop),
the groups of unknown faces and the corrections people made. ``facelens
ingest``, ``cluster`` and ``search`` and the service's ``/api/library`` all
read and write this one library, so the CLI and the browser see the same state.

>>> from facelens import FaceLens
>>> from facelens.ingest import expand_sources
>>> with FaceLens(gallery="people.db") as lens:                    # doctest: +SKIP
...     library = lens.library()
...     library.scan(expand_sources(["photos/"]))
...     group = library.groups_page(0, 1)[1][0]
...     library.name(group.id, "Ada")      # her best faces enrolled, the rest linked

A scan is incremental and resumable: a file already read (same path, or
same bytes under another path) is not read again, and an interrupted scan
continues with the items still pending. A file that cannot be read is
recorded as failed with its reason; it never stops the scan.

A person's *appearances* are the faces of the group named after them
(linked) and the faces elsewhere in the library that the gallery identifies
as them at the operating point (identified), less those someone said are
"not this person".
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelens.cluster.clusterer import FaceClusters
from facelens.cluster.engine import RegroupSummary, regroup
from facelens.cluster.ingest import file_sha256
from facelens.cluster.library_store import LibraryStore
from facelens.cluster.resemblance import Resemblance, group_resemblances, person_threshold
from facelens.cluster.store import FaceRecord, GroupRecord, ItemTally, NewFace
from facelens.errors import CorrectionError, FaceLensError, PersonNotFoundError
from facelens.ingest.process import ItemResult, ProcessOptions, batches
from facelens.ingest.run import DEFAULT_BATCH_SIZE, Executor, LocalExecutor
from facelens.ingest.scan_index import ScanFaces
from facelens.ingest.search import Appearance, search_appearances
from facelens.ingest.sources import WorkItem
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.models import registry
from facelens.types import USABLE_QUALITY, Box, FloatArray

__all__ = ["MAX_FAILURES_LISTED", "Library", "LibraryAppearance", "person_threshold"]

DEFAULT_ENROLLED = 8
"""Faces of a named group enrolled in the gallery (its best); the rest are linked appearances."""
MAX_FAILURES_LISTED = 500


@dataclass
class ScanSummary:
    """One scan: what it registered, read, skipped and failed, and what grouping changed.

    ``seconds`` is wall time; ``failures`` lists ``(source, reason)`` of the items
    that failed in this scan (at most :data:`MAX_FAILURES_LISTED`).
    """

    registered: int = 0
    processed: int = 0
    failed: int = 0
    duplicates: int = 0
    faces: int = 0
    low_quality: int = 0
    seconds: float = 0.0
    counts: ItemTally = field(default_factory=lambda: ItemTally(0, 0, 0))
    failures: list[tuple[str, str]] = field(default_factory=list)
    grouping: RegroupSummary | None = None

    @property
    def items_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self, show: Callable[[str], str] = str) -> dict[str, Any]:
        """JSON-ready; ``show`` turns a stored path into the form shown to the user."""
        return {
            "registered": self.registered,
            "processed": self.processed,
            "failed": self.failed,
            "duplicates": self.duplicates,
            "faces": self.faces,
            "low_quality": self.low_quality,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 3),
            "pending": self.counts.pending,
            "done": self.counts.done,
            "failed_in_all": self.counts.failed,
            "failures": [{"source": show(s), "error": show(e)} for s, e in self.failures],
            "grouping": None if self.grouping is None else self.grouping.to_dict(),
        }


@dataclass(frozen=True)
class LibraryAppearance:
    """A face of the library that is a given person.

    ``how`` is ``linked`` (in the group named after them) or ``identified``
    (the gallery's best match at the operating point, ``score`` its cosine).
    ``box`` ``[x, y, width, height]`` in pixels of the photo or video frame;
    ``time`` seconds into a video (None for a photo).
    """

    face: int
    item: int
    source: str
    kind: str
    box: list[float]
    frame_index: int | None
    time: float | None
    how: str
    score: float | None


class Library:
    """The library beside a gallery (see the module docstring).

    Args:
        clusters: the groups and corrections over the library's store
            (``clusters.store``), with the pipeline and gallery they use.
        video_fps: video frames searched per second of video.
        min_quality: faces below this quality (0-1) are counted, not kept.
        enroll_best: faces of a named group enrolled in the gallery (its best).
    """

    def __init__(
        self,
        clusters: FaceClusters,
        *,
        video_fps: float = 2.0,
        min_quality: float = USABLE_QUALITY,
        enroll_best: int = DEFAULT_ENROLLED,
    ) -> None:
        self.clusters = clusters
        self.clusters.enroll_best = enroll_best
        self.store: LibraryStore = clusters.store
        self.video_fps = video_fps
        self.min_quality = min_quality
        self._lock = threading.RLock()
        self._vectors: tuple[tuple[int, int], np.ndarray, FloatArray] | None = None

    @property
    def label(self) -> str:
        """Where the library is, for people: its file, or the gallery's database (redacted)."""
        return self.store.label

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the library for a multi-step change: one thread of one process at a time
        (the store's lock across processes, so several server processes take turns)."""
        with self._lock, self.store.exclusive():
            yield

    # --- scanning -----------------------------------------------------------------------

    def options(self, threads: int | None = None) -> ProcessOptions:
        pipeline = self.clusters.pipeline
        return ProcessOptions(
            embedder=pipeline.embedder_id,
            detector=registry.DEFAULT_DETECTOR,
            target="scan",
            video_fps=self.video_fps,
            threads=threads,
            max_side=pipeline.max_side,
            crops=True,
        )

    def scan(
        self,
        items: list[WorkItem],
        *,
        executor: Executor | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        limit: int | None = None,
        retry_failed: bool = False,
        group: bool = True,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> ScanSummary:
        """Register ``items``, read every pending one (at most ``limit``), then group the new
        faces (unless ``group`` is False). ``progress(done, total, source)`` follows each item;
        it may raise to stop the scan (the items not read stay pending)."""
        started = time.perf_counter()
        summary = ScanSummary()
        if retry_failed:
            self.store.retry_failed()
        summary.registered = self.store.register_items((i.source, i.kind) for i in items)
        pending = [
            WorkItem(s, "video" if k == "video" else "image")
            for s, k in self.store.pending_items(limit)
        ]
        total = len(pending)
        done = 0
        digests: dict[str, str] = {}
        to_read: list[WorkItem] = []
        for item in pending:
            try:
                digest = file_sha256(Path(item.source))
            except FaceLensError as error:
                self._fail(summary, item.source, str(error))
                done += 1
                if progress:
                    progress(done, total, item.source)
                continue
            if self.store.has_photo(digest):
                self.store.record_item(item.source, sha256=digest)
                summary.duplicates += 1
                done += 1
                if progress:
                    progress(done, total, item.source)
                continue
            digests[item.source] = digest
            to_read.append(item)
        own = executor is None
        runner = executor or LocalExecutor(self.options(), self.clusters.pipeline)
        try:
            for results in runner.map(batches(to_read, batch_size)):
                for result in results:
                    self._record(summary, result, digests.get(result.source))
                    done += 1
                    if progress:
                        progress(done, total, result.source)
        finally:
            if own:
                runner.close()
        if group:
            summary.grouping = self.regroup()
        summary.counts = self.store.item_counts()
        summary.seconds = time.perf_counter() - started
        return summary

    def _fail(self, summary: ScanSummary, source: str, reason: str) -> None:
        self.store.record_item(source, error=reason)
        summary.failed += 1
        if len(summary.failures) < MAX_FAILURES_LISTED:
            summary.failures.append((source, reason))

    def _record(self, summary: ScanSummary, result: ItemResult, digest: str | None) -> None:
        summary.processed += 1
        if result.error is not None:
            self._fail(summary, result.source, result.error)
            return
        kept = [i for i in range(result.count) if result.qualities[i] >= self.min_quality]
        faces = []
        for i in kept:
            frame = int(result.frame_index[i])
            moment = float(result.time[i])
            faces.append(
                NewFace(
                    Box(*(float(v) for v in result.boxes[i])),
                    float(result.qualities[i]),
                    result.vectors[i],
                    result.crops[i] if result.crops else None,
                    frame_index=None if frame < 0 else frame,
                    time=None if math.isnan(moment) else moment,
                )
            )
        self.store.record_item(
            result.source,
            sha256=digest,
            width=result.width,
            height=result.height,
            faces=faces,
            frames=result.frames,
        )
        summary.faces += len(faces)
        summary.low_quality += result.count - len(faces)

    def regroup(self, *, rebuild: bool = False) -> RegroupSummary:
        """Group the faces waiting for a group (every face with ``rebuild``)."""
        with self.exclusive():
            point = self.clusters.operating_point()
            grouping = regroup(self.store, point.threshold, rebuild=rebuild)
            self.store.set_meta("threshold", repr(point.threshold))
        return grouping

    # --- groups and corrections -----------------------------------------------------------

    def groups_page(
        self, offset: int = 0, limit: int = 50, *, hidden: bool = False
    ) -> tuple[int, list[GroupRecord]]:
        """A page of the unnamed groups (hidden ones with ``hidden``), largest first, and
        how many there are in all."""
        return self.store.unnamed_groups(offset, limit, hidden=hidden)

    @contextlib.contextmanager
    def _correction(self, action: str) -> Iterator[None]:
        """One correction: exclusive, undoable; when it fails half-way, rolled back (and the
        correction before it can still be undone)."""
        with self.exclusive():
            previous = self.store.undo_record()
            with self.store.write() as db:
                self.store.save_undo(db, action)
            try:
                yield
            except BaseException:
                self._restore()
                if previous is not None:
                    with self.store.write() as db:
                        self.store.put_undo_record(db, previous)
                raise

    def _restore(self) -> str | None:
        """Put back the state before the last correction. A person the correction made (a
        group named, faces moved to a new name) is erased from the gallery again once no
        group carries their name and no template of theirs is left: undo leaves no empty
        person behind."""
        before = {g.name for g in self.store.groups() if g.name is not None}
        undone = self.store.restore_undo()
        if undone is not None:
            named = [g.id for g in self.store.groups() if g.name is not None]
            self.clusters._sync(named)
            regroup(self.store, self.clusters.operating_point().threshold)
            after = {g.name for g in self.store.groups() if g.name is not None}
            for name in sorted(before - after):
                with contextlib.suppress(PersonNotFoundError):
                    if self.clusters.gallery.get_person(name).templates == 0:
                        self.clusters.gallery.erase_person(name)
        return undone

    def name(
        self,
        group_id: int,
        name: str,
        *,
        rename: bool = True,
        threshold_for: Callable[[int], float] | None = None,
    ) -> dict[str, Any]:
        """The group is the person ``name`` (new, or already in the gallery or the library:
        then it joins them). Its best faces are enrolled, the rest linked.

        With ``rename`` False, a group that already carries another name is refused
        (:class:`CorrectionError`): two pages naming one group at once end with the first
        name, and the second page is told, instead of renaming the person the first made.
        With ``threshold_for`` (the cosine a face must reach on one of a person's ``k``
        templates), an unnamed group whose faces look like another enrolled person is
        refused (:meth:`FaceClusters.refuse_another_persons_group`); leave it out to force.
        """
        name = name.strip()
        with self._correction("name"):
            group = self.store.group(group_id)
            if not rename and group.name is not None and group.name != name:
                raise CorrectionError(
                    f"Group {group.id} was named {group.name!r} meanwhile (on another page); "
                    f"to change that name, rename {group.name!r} on their page"
                )
            if threshold_for is not None:
                self.clusters.refuse_another_persons_group(group.id, name, threshold_for)
            holder = self.store.group_named(name)
            if holder is not None and holder.id != group.id:
                merged = self.clusters.merge([holder.id, group.id])
                return {"group": merged["group"], "name": name, "gallery": merged["gallery"]}
            return self.clusters.name(group_id, name)

    def merge(self, group_ids: list[int]) -> dict[str, Any]:
        with self._correction("merge"):
            return self.clusters.merge(group_ids)

    def move(self, face_ids: list[int], group_id: int) -> dict[str, Any]:
        with self._correction("move"):
            return self.clusters.move(face_ids, group_id)

    def move_to_person(self, face_ids: list[int], name: str) -> dict[str, Any]:
        """These faces are the person ``name``: they join the group named after them. A person
        with no group in the library (enrolled from photos, or new) gets one, named, so the
        faces' best are enrolled under ``name`` and the rest linked. They are no longer the
        person they leave, and a "not ``name``" said of them before is withdrawn (the latest
        word wins). Undone as one correction."""
        name = name.strip()
        with self._correction("move"):
            faces = self.store.faces(face_ids)
            ids = [f.id for f in faces]
            with self.store.write() as db:
                self.store.remove_not_person(db, ids, name)
                self.store.log(db, "move_to_person", {"faces": ids, "name": name})
            holder = self.store.group_named(name)
            if holder is not None:
                result = self.clusters.move(ids, holder.id)
                return {
                    "group": holder.id,
                    "name": name,
                    "faces": ids,
                    "gallery": result["gallery"],
                }
            with self.store.write() as db:
                new_id = self.store.new_group(db)
            moved = self.clusters.move(ids, new_id)
            named = self.clusters.name(new_id, name)
            gallery = {k: moved["gallery"][k] + named["gallery"][k] for k in named["gallery"]}
            return {"group": new_id, "name": name, "faces": ids, "gallery": gallery}

    def split(self, group_id: int, face_ids: list[int]) -> dict[str, Any]:
        """These faces of a group are someone else: they become a new group of their own
        (kept apart from the faces left)."""
        with self._correction("split"):
            return self.clusters.split(group_id, face_ids)

    def reject(self, face_ids: list[int]) -> dict[str, Any]:
        """ "Not this person" on faces of groups: they leave for good and are grouped again."""
        with self._correction("reject"):
            return self.clusters.reject(face_ids)

    def hide(self, group_id: int, hidden: bool = True) -> dict[str, Any]:
        """Hide a group (strangers) from the list of groups to name, or show it again."""
        with self._correction("hide"):
            group = self.store.group(group_id)
            with self.store.write() as db:
                self.store.set_hidden(db, group.id, hidden)
                self.store.log(db, "hide" if hidden else "show", {"group": group.id})
        return {"group": group.id, "hidden": hidden}

    def undo(self) -> dict[str, Any]:
        """Undo the last correction (one level); ``undone`` is None when there was none."""
        with self.exclusive():
            return {"undone": self._restore()}

    # --- people's appearances ---------------------------------------------------------------

    def _face_vectors(self) -> tuple[np.ndarray, FloatArray]:
        """Every face's id and template (cached until faces are added or erased)."""
        key = self.store.face_version()
        if self._vectors is None or self._vectors[0] != key:
            matrix = self.store.face_matrix()
            self._vectors = (key, matrix.face_ids, matrix.vectors)
        return self._vectors[1], self._vectors[2]

    def resemblances(
        self, group_ids: Sequence[int], point: OperatingPoint, calibration: Calibration
    ) -> dict[int, Resemblance]:
        """The enrolled person each of these groups looks like, if any
        (:mod:`facelens.cluster.resemblance`: at least half its faces identified as them)."""
        members = {g: [f.id for f in self.store.faces(group_id=g)] for g in group_ids}
        face_ids, vectors = self._face_vectors()
        return group_resemblances(
            members,
            face_ids,
            vectors,
            self.clusters.gallery.template_matrix(),
            lambda templates: person_threshold(point, calibration, templates),
            self.store.not_person,
        )

    def appearances(
        self, name: str, point: OperatingPoint, calibration: Calibration
    ) -> list[LibraryAppearance]:
        """Every face of ``name`` in the library: linked ones, then those the gallery
        identifies as them at ``point``, by source and time.

        A face is identified as ``name`` when its best match in the gallery is one of
        their ``k`` templates and reaches :func:`person_threshold`: the threshold at
        which one comparison's false-match rate is ``point.fmr / k``, so that a
        stranger's face reaches any of the person's templates at most at the operating
        point's rate (``calibration`` turns the rate into a cosine).
        """
        group = self.store.group_named(name)
        refused = self.store.not_person(name)
        found: list[LibraryAppearance] = []
        linked_ids: set[int] = set()
        if group is not None:
            for face in self.store.faces(group_id=group.id):
                if face.id not in refused:
                    found.append(_appearance(face, "linked", None))
                    linked_ids.add(face.id)
        matrix = self.clusters.gallery.template_matrix()
        mine = [pid for pid, n in matrix.names.items() if n == name]
        face_ids, vectors = self._face_vectors()
        if mine and len(face_ids) and len(matrix.template_ids):
            scores = vectors @ matrix.vectors.T
            best = scores.argmax(axis=1)
            best_scores = scores[np.arange(len(face_ids)), best]
            owners = matrix.person_ids[best]
            threshold = person_threshold(
                point, calibration, int((matrix.person_ids == mine[0]).sum())
            )
            hits = np.flatnonzero((owners == mine[0]) & (best_scores >= threshold))
            named = {g.id for g in self.store.groups() if g.name is not None}
            candidates = [int(face_ids[i]) for i in hits]
            score_of = {int(face_ids[i]): float(best_scores[i]) for i in hits}
            wanted = [f for f in candidates if f not in linked_ids and f not in refused]
            for face in self.store.faces(wanted) if wanted else []:
                if face.group_id is None or face.group_id not in named:
                    found.append(_appearance(face, "identified", score_of[face.id]))
        found.sort(key=lambda a: (a.source, a.time or 0.0, a.face))
        return found

    def reject_appearance(self, name: str, face_id: int) -> dict[str, Any]:
        """ "Not this person": the face is never shown as ``name``'s again (and leaves their
        group if it was in it)."""
        with self._correction("not_person"):
            face = self.store.faces([face_id])[0]
            group = self.store.group_named(name)
            with self.store.write() as db:
                self.store.add_not_person(db, face.id, name)
                self.store.log(db, "not_person", {"face": face.id, "name": name})
            if group is not None and face.group_id == group.id:
                self.clusters.reject([face.id])
        return {"face": face_id, "not": name}

    # --- search -------------------------------------------------------------------------------

    def scan_faces(self) -> ScanFaces:
        """Every face of the library as search candidates."""
        face_ids, vectors = self._face_vectors()
        records = {f.id: f for f in self.store.faces()}
        rows = [records[int(i)] for i in face_ids]
        return ScanFaces(
            face_ids=face_ids,
            sources=[f.source for f in rows],
            frame_index=np.array(
                [-1 if f.frame_index is None else f.frame_index for f in rows], np.int64
            ),
            time=np.array([np.nan if f.time is None else f.time for f in rows], np.float64),
            boxes=np.array([f.box.as_list() for f in rows], np.float32).reshape(-1, 4),
            qualities=np.array([f.quality for f in rows], np.float32),
            vectors=vectors,
        )

    def search(
        self,
        probe: FloatArray,
        point: OperatingPoint,
        calibration: Calibration,
        *,
        limit: int = 100,
        include_below: bool = False,
    ) -> list[Appearance]:
        """The faces of the library most like ``probe`` (a unit template), best first."""
        return search_appearances(
            probe,
            self.scan_faces(),
            point,
            calibration,
            limit=limit,
            include_below=include_below,
        )

    def close(self) -> None:
        self.clusters.close()


def _appearance(face: FaceRecord, how: str, score: float | None) -> LibraryAppearance:
    return LibraryAppearance(
        face=face.id,
        item=face.photo_id,
        source=face.source,
        kind=face.kind,
        box=[round(v, 1) for v in face.box.as_list()],
        frame_index=face.frame_index,
        time=None if face.time is None else round(face.time, 3),
        how=how,
        score=None if score is None else round(score, 4),
    )
