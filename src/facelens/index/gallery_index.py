"""The search index of a gallery, kept beside its file and in step with it.

``<gallery>.codes.npz`` (a :class:`facelens.index.codes.CodeIndex`) sits next
to the gallery file. (Earlier versions kept a usearch graph in
``<gallery>.usearch``; such files hold quantized templates, so they are
deleted when the gallery's index is opened.) The gallery stays the truth;
the index is derived from it and reconciled by template id
(:meth:`GalleryIndex.sync`): templates the gallery has and the index lacks
are added, templates the index holds that the gallery no longer has are
removed, and the result is saved. That makes the update
incremental (an enrollment adds only its templates, an erasure removes only
its own), and makes a stale index file (written before another process
enrolled or erased) harmless: it is corrected on the next sync, and until
then the search drops any id the gallery does not hold
(:func:`facelens.index.search.top_templates`).

No index is built for galleries below :data:`ANN_MIN_TEMPLATES`: they are
searched exactly.

The gallery layer is not touched: the application (``FaceLens``) calls
:meth:`sync` after enrolling and erasing and before identifying.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from facelens.errors import GalleryError
from facelens.gallery.store import TemplateMatrix
from facelens.index.codes import MIN_TRAINING_TEMPLATES, CodeIndex
from facelens.index.search import ANN_MIN_TEMPLATES, CANDIDATES, ranked_people, uses_index
from facelens.types import FloatArray

__all__ = ["GalleryIndex", "index_path_for"]

INDEX_SUFFIX = ".codes.npz"
LEGACY_SUFFIXES = (".usearch", ".usearch.ids.npy", ".usearch.json")
"""Files of the usearch index of earlier versions (deleted on sight: they hold templates)."""


def index_path_for(gallery_path: Path) -> Path:
    """Where the index of the gallery file ``gallery_path`` lives."""
    return gallery_path.with_name(gallery_path.name + INDEX_SUFFIX)


class GalleryIndex:
    """The persisted search index of one gallery file.

    Args:
        path: the index file (see :func:`index_path_for`).
        min_templates: build (and use) the index from this many templates on.
        candidates: templates proposed per probe before exact rescoring.
        persist: keep the index in the file beside the gallery. False for an
            encrypted gallery: the index holds templates (quantized) in the
            clear, so it then lives in memory only and is rebuilt per process.
    """

    def __init__(
        self,
        path: Path,
        *,
        min_templates: int = ANN_MIN_TEMPLATES,
        candidates: int = CANDIDATES,
        persist: bool = True,
    ) -> None:
        self.path = path
        self.persist = persist
        self.min_templates = min_templates
        self.candidates = candidates
        self._index: CodeIndex | None = None
        self._synced: TemplateMatrix | None = None
        self._lock = threading.Lock()
        if persist:
            _delete_legacy_files(path)
        if persist and path.exists():
            try:
                self._index = CodeIndex.load(path)
            except GalleryError:  # damaged or half-written: rebuilt from the gallery on sync
                self._index = None

    @property
    def index(self) -> CodeIndex | None:
        """The index, or None while the gallery is small enough for exact search."""
        return self._index

    def sync(self, matrix: TemplateMatrix) -> bool:
        """Bring the index in step with ``matrix`` (the gallery's templates); True if it changed.

        Cheap when ``matrix`` is the object of the last sync (the gallery
        caches it until a write).
        """
        with self._lock:
            if matrix is self._synced:
                return False
            changed = self._reconcile(matrix)
            if changed and self._index is not None and self.persist:
                self._index.save(self.path)
            self._synced = matrix
            return changed

    def _reconcile(self, matrix: TemplateMatrix) -> bool:
        if self._index is None:
            if len(matrix.template_ids) < max(self.min_templates, MIN_TRAINING_TEMPLATES):
                return False
            self._index = CodeIndex(matrix.vectors.shape[1])
        if self._index.dimension != matrix.vectors.shape[1] and len(matrix.template_ids):
            self._index = CodeIndex(matrix.vectors.shape[1])
        removed = self._index.remove(np.setdiff1d(self._index.ids, matrix.template_ids))
        new = ~np.isin(matrix.template_ids, self._index.ids)
        self._index.add(matrix.template_ids[new], matrix.vectors[new])
        return bool(removed or new.any())

    def ranked_people(
        self, probes: FloatArray, matrix: TemplateMatrix, top_k: int
    ) -> list[list[tuple[int, float]]] | None:
        """Each probe's best people by exact score, through the index; None below the size
        where the index is used (the caller then scores exactly)."""
        self.sync(matrix)
        if not uses_index(matrix, self._index, self.min_templates):
            return None
        return ranked_people(
            probes,
            matrix,
            top_k,
            self._index,
            min_templates=self.min_templates,
            candidates=self.candidates,
        )

    @property
    def exists(self) -> bool:
        """Whether there is an index to keep in step (in memory or in its file)."""
        return self._index is not None or (self.persist and self.path.exists())

    def delete(self) -> None:
        """Remove the index files (they can always be rebuilt from the gallery)."""
        with self._lock:
            self.path.unlink(missing_ok=True)
            self._index = None
            self._synced = None


def _delete_legacy_files(path: Path) -> None:
    base = path.name[: -len(INDEX_SUFFIX)] if path.name.endswith(INDEX_SUFFIX) else path.name
    for suffix in LEGACY_SUFFIXES:
        path.with_name(base + suffix).unlink(missing_ok=True)
