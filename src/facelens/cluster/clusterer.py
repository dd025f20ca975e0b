"""The clustering application: index photos, group faces, take corrections, report.

>>> from facelens.cluster import FaceClusters
>>> with FaceClusters.open(gallery="people.db") as clusters:          # doctest: +SKIP
...     report = clusters.run(["photos/"])
...     clusters.name(report.groups[0]["id"], "Ada Lovelace")   # enrolls Ada in people.db

The operating point is a false-match rate per comparison, turned into a
cosine threshold by the embedder's calibration (``match/calibration.py``);
two groups merge when the mean score over all their cross pairs of faces
reaches it. The default, ``DEFAULT_CLUSTER_FMR``, was chosen on the LFW
development people (``benchmarks/cluster_lfw.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from facelens import settings
from facelens.cluster.corrections import (
    merge_groups,
    move_faces,
    name_group,
    reject_faces,
    split_group,
    sync_gallery,
)
from facelens.cluster.engine import RegroupSummary, regroup
from facelens.cluster.ingest import PhotoOutcome, index_photos
from facelens.cluster.library_store import (
    LibraryStore,
    library_location,
    open_library_store,
)
from facelens.cluster.resemblance import group_resemblances
from facelens.cluster.store import FaceRecord
from facelens.errors import CorrectionError, GroupMatchesOtherPersonError, PersonNotFoundError
from facelens.gallery import (
    GalleryStore,
    is_postgres_url,
    open_gallery,
    resolve_gallery,
    stored_model_id,
)
from facelens.gallery.protection import resolve_gallery_key
from facelens.match.calibration import OperatingPoint, calibration_for, operating_point
from facelens.models import registry
from facelens.pipeline.faces import FacePipeline
from facelens.types import USABLE_QUALITY

__all__ = ["DEFAULT_CLUSTER_FMR", "FaceClusters", "default_index_path", "default_library_path"]

DEFAULT_CLUSTER_FMR = 1e-5
"""False-match rate per comparison that sets the default merge threshold (see module docstring)."""


def default_index_path(gallery: str | Path | None) -> Path:
    """The library *file* of a gallery: ``$FACELENS_LIBRARY`` when set, else
    ``<gallery file stem>.library.db`` beside the gallery file (or the
    ``<stem>.clusters.db`` an older ``facelens cluster`` made there, when only it
    exists); for a PostgreSQL gallery, the ``library.db`` in the user data folder
    that versions before the PostgreSQL library used (a PostgreSQL gallery's library
    is in its database: :func:`~facelens.cluster.library_store.library_location`)."""
    configured = settings.library()
    if configured:
        return configured
    location = resolve_gallery(gallery)
    if is_postgres_url(location):
        return Path(platformdirs.user_data_dir("facelens")) / "library.db"
    path = Path(location)
    library = path.with_name(path.stem + ".library.db")
    legacy = path.with_name(path.stem + ".clusters.db")
    return legacy if legacy.exists() and not library.exists() else library


default_library_path = default_index_path


@dataclass
class RunReport:
    """One ``run``: what happened to each photo, what the clustering changed, the groups."""

    photos: list[PhotoOutcome]
    regroup: RegroupSummary
    point: OperatingPoint
    groups: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "photos": [p.to_dict() for p in self.photos],
            "run": self.regroup.to_dict(),
            "fmr": self.point.fmr,
            "groups": self.groups,
        }


class FaceClusters:
    """Groups of unknown faces, kept in a cluster index beside a gallery.

    Args:
        pipeline: the pipeline that finds and embeds faces.
        store: the cluster index.
        gallery: opens the gallery that named groups are enrolled into (called
            only when a named group changes).
        owns_gallery: close that gallery in :meth:`close` (False when it is
            shared, e.g. a ``FaceLens``'s own).
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        store: LibraryStore,
        gallery: Callable[[], GalleryStore],
        *,
        owns_gallery: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self._open_gallery = gallery
        self._gallery: GalleryStore | None = None
        self._owns_gallery = owns_gallery
        self.enroll_best: int | None = None  # None: enroll every usable face of a named group

    @classmethod
    def open(
        cls,
        gallery: str | Path | None = None,
        index: str | Path | None = None,
        *,
        embedder: str | None = None,
        pipeline: FacePipeline | None = None,
        key_file: str | Path | None = None,
    ) -> FaceClusters:
        """The library at ``index`` (default: the gallery's, see
        :func:`~facelens.cluster.library_store.library_location`), for the gallery's
        embedder; with the gallery's key (``key_file``, else the key environment variables)
        the library is encrypted too."""
        if pipeline is None:
            if embedder is None:
                embedder = stored_model_id(resolve_gallery(gallery)) or registry.DEFAULT_EMBEDDER
            pipeline = FacePipeline(embedder=embedder)
        model = pipeline.embedder_id
        cipher = resolve_gallery_key(key_file)
        store = open_library_store(library_location(gallery, index), model, cipher=cipher)
        return cls(pipeline, store, lambda: open_gallery(gallery, model, key_file=key_file))

    @property
    def gallery(self) -> GalleryStore:
        if self._gallery is None:
            self._gallery = self._open_gallery()
        return self._gallery

    def operating_point(
        self, fmr: float | None = None, threshold: float | None = None
    ) -> OperatingPoint:
        """The merge threshold: as asked, else as the last run used, else the default rate."""
        calibration = calibration_for(self.pipeline.embedder_id)
        if fmr is None and threshold is None:
            stored = self.store.get_meta("threshold")
            if stored is not None:
                return operating_point(calibration, threshold=float(stored))
            fmr = DEFAULT_CLUSTER_FMR
        return operating_point(calibration, fmr=fmr, threshold=threshold)

    def run(
        self,
        paths: list[Path],
        *,
        fmr: float | None = None,
        threshold: float | None = None,
        rebuild: bool = False,
        min_quality: float = USABLE_QUALITY,
        on_item: Callable[[PhotoOutcome], None] | None = None,
    ) -> RunReport:
        """Index new photos among ``paths``, then group the faces waiting (or all, ``rebuild``)."""
        point = self.operating_point(fmr, threshold)
        outcomes = index_photos(
            self.pipeline, self.store, paths, min_quality=min_quality, on_item=on_item
        )
        summary = regroup(self.store, point.threshold, rebuild=rebuild)
        self.store.set_meta("threshold", repr(point.threshold))
        return RunReport(outcomes, summary, point, self.groups())

    # --- corrections: each one is stored, then the gallery follows named groups --------

    def merge(self, group_ids: list[int]) -> dict[str, Any]:
        """Several groups are one person; returns the merged group and gallery changes."""
        target = merge_groups(self.store, group_ids)
        return {"group": target, "gallery": self._sync([target])}

    def split(self, group_id: int, face_ids: list[int]) -> dict[str, Any]:
        """``face_ids`` of a group are another person: they become a new group."""
        new_id = split_group(self.store, group_id, face_ids)
        return {"group": group_id, "new_group": new_id, "gallery": self._sync([group_id])}

    def move(self, face_ids: list[int], group_id: int) -> dict[str, Any]:
        """Faces belong to another group."""
        move_faces(self.store, face_ids, group_id)
        return {"group": group_id, "gallery": self._sync([group_id])}

    def reject(self, face_ids: list[int]) -> dict[str, Any]:
        """ "Not this person": the faces leave their groups for good and are grouped again."""
        reject_faces(self.store, face_ids)
        changes = self._sync([])
        summary = regroup(self.store, self.operating_point().threshold)
        placed = {f.id: f.group_id for f in self.store.faces(face_ids)}
        return {"faces": placed, "run": summary.to_dict(), "gallery": changes}

    def name(self, group_id: int, name: str) -> dict[str, Any]:
        """Name a group: it is enrolled in the gallery as that person (renamed if it had a name)."""
        previous = self.store.group(group_id).name
        if previous is not None and previous != name.strip():
            with contextlib.suppress(PersonNotFoundError):
                self.gallery.get_person(name.strip())
                raise CorrectionError(
                    f"the gallery already has a person named {name.strip()!r}; group {group_id} "
                    f"is {previous!r} there. Choose another name, or move this group's faces "
                    f"into the group named {name.strip()!r}"
                )
        name_group(self.store, group_id, name)
        changes = sync_gallery(
            self.store, self.gallery, [group_id], renamed_from=previous, best=self.enroll_best
        )
        person = self.gallery.get_person(name.strip()) if changes["enrolled"] or previous else None
        return {
            "group": group_id,
            "name": name.strip(),
            "gallery": changes,
            "templates_in_gallery": person.templates if person else None,
        }

    def refuse_another_persons_group(
        self, group_id: int, name: str, threshold_for: Callable[[int], float]
    ) -> None:
        """Before an unnamed group is named ``name``: refuse it
        (:class:`GroupMatchesOtherPersonError`) when its faces look like another enrolled
        person (:mod:`facelens.cluster.resemblance`; ``threshold_for(k)`` is the cosine a
        face must reach on one of a person's ``k`` templates), as enrolling a photo that
        matches someone else is refused. Naming it after that person, or forcing, passes."""
        if self.store.group(group_id).name is not None:
            return  # a rename: its faces are its own person's
        members = sorted(f.id for f in self.store.faces(group_id=group_id))
        found = group_resemblances(
            {group_id: members},
            np.array(members, dtype=np.int64),
            self.store.vectors(members),
            self.gallery.template_matrix(),
            threshold_for,
            self.store.not_person,
        ).get(group_id)
        if found is not None and found.name != name.strip():
            raise GroupMatchesOtherPersonError(
                f"group {group_id} looks like {found.name!r} ({found.faces} of its "
                f"{found.of} faces are identified as them): name it {found.name!r}, or name "
                f"it {name.strip()!r} anyway (force)"
            )

    def forget(self, group_id: int) -> dict[str, Any]:
        """Erase a group's faces from the index (not from the gallery: `facelens people remove`)."""
        name = self.store.group(group_id).name
        erased = self.store.forget_group(group_id)
        return {"group": group_id, "faces_erased": erased, "gallery_person": name}

    def _sync(self, group_ids: list[int]) -> dict[str, int]:
        """Gallery changes after a correction (nothing to do, and no gallery opened, if no
        group touched is named and no enrolled face moved)."""
        named = any(self.store.group(g).name is not None for g in group_ids)
        enrolled_faces = any(f.template_id is not None for f in self.store.faces())
        if not named and not enrolled_faces:
            return {"enrolled": 0, "removed": 0}
        return sync_gallery(self.store, self.gallery, group_ids, best=self.enroll_best)

    # --- reading ------------------------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        """Every group (largest first) with its faces, as JSON-ready dicts."""
        faces_by_group: dict[int, list[FaceRecord]] = {}
        for face in self.store.faces():
            if face.group_id is not None:
                faces_by_group.setdefault(face.group_id, []).append(face)
        return [
            {
                "id": group.id,
                "name": group.name,
                "size": group.faces,
                "faces": [f.to_dict() for f in faces_by_group.get(group.id, [])],
            }
            for group in self.store.groups()
        ]

    def group_cohesion(self, group_id: int) -> dict[int, float]:
        """Per face of a group, its mean cosine score to the group's other faces (1.0 alone)."""
        faces = self.store.faces(group_id=group_id)
        if len(faces) < 2:
            return {f.id: 1.0 for f in faces}
        vectors = self.store.vectors([f.id for f in faces])
        scores = vectors @ vectors.T
        means = (scores.sum(axis=1) - np.diag(scores)) / (len(faces) - 1)
        return {f.id: float(m) for f, m in zip(faces, means, strict=True)}

    def close(self) -> None:
        if self._gallery is not None and self._owns_gallery:
            with contextlib.suppress(Exception):
                self._gallery.close()
        self._gallery = None
        self.store.close()

    def __enter__(self) -> FaceClusters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
