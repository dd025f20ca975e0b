"""Search a PostgreSQL gallery through a code index held by this process.

pgvector's HNSW graph, in the server, is the default search of a PostgreSQL
gallery in the clear. On large galleries it misses: at a million templates
(LFW + synthetic distractors, 2 cores) it finds the exact nearest template
for 95% of probes in 20 ms, and needs 77 ms for 99.5% (docs/benchmarks.md#pgvector).
The same :class:`~facelens.index.codes.CodeIndex` that serves SQLite galleries
scans every template's 32-byte code in about 1.9 ms and loses none.
:class:`PostgresCodeIndex` puts it in front of a PostgreSQL gallery (4.7 ms
a search at a million, with the fetch of the candidates' templates):

* PostgreSQL stays the one shared store. Each process (API worker, CLI run)
  reads the templates once, in pages of :data:`PAGE`, and keeps only their
  codes and ids: 40 bytes per template (40 MB per million at 128-D);
* before each search it compares the gallery's write counter with the one it
  last saw (one round trip). After a write it fetches only the templates
  added since (ids grow with every write, which writers make one at a time),
  and, if the count shows that some were deleted, the list of ids, dropping
  the erased ones from its codes (:meth:`CodeIndex.remove` rebuilds the codes
  without them);
* a search takes the ``candidates`` templates whose codes score best and
  fetches every template of their people from PostgreSQL
  (:meth:`PostgresGallery.people_matrix`), which the caller scores exactly.
  A template erased by another process in between is simply absent from that
  fetch.

Chosen with ``$FACELENS_POSTGRES_SEARCH=codes`` (default ``hnsw``). Each process
pays a read of every template at its first search (6 s at a million), so it
suits long-running workers of large galleries. Below ``min_templates``
templates, and for encrypted galleries (which :class:`FaceLens` already
searches in memory), the gallery answers as before.
"""

from __future__ import annotations

import threading

import numpy as np

from facelens import settings
from facelens.errors import GalleryError
from facelens.gallery.store import SearchServer, TemplateMatrix
from facelens.index.codes import TRAINING_TEMPLATES, CodeIndex
from facelens.index.search import ANN_MIN_TEMPLATES, CANDIDATES
from facelens.types import FloatArray

__all__ = ["ANN_MIN_TEMPLATES", "SEARCH_ENV", "PostgresCodeIndex", "postgres_search_mode"]

SEARCH_ENV = settings.POSTGRES_SEARCH.name
SEARCH_MODES = ("hnsw", "codes")
PAGE = TRAINING_TEMPLATES
"""Templates read per round trip; the first page also teaches the codes their centroids."""


def postgres_search_mode() -> str:
    """``$FACELENS_POSTGRES_SEARCH``: ``hnsw`` (the server's index, default) or ``codes``."""
    mode = settings.postgres_search()
    if mode not in SEARCH_MODES:
        raise GalleryError(f"{SEARCH_ENV} must be one of {', '.join(SEARCH_MODES)}, not {mode!r}")
    return mode


class PostgresCodeIndex:
    """The codes of a PostgreSQL gallery's templates, in this process; see the module docstring.

    Args:
        gallery: a PostgreSQL gallery in the clear (its ``search_server``).
        min_templates: below this many templates the gallery's own search answers
            (default :data:`~facelens.index.search.ANN_MIN_TEMPLATES`).
        candidates: templates proposed per probe before their people are fetched.
    """

    def __init__(
        self,
        gallery: SearchServer,
        *,
        min_templates: int | None = None,
        candidates: int = CANDIDATES,
    ) -> None:
        if gallery.encrypted:
            raise GalleryError("an encrypted gallery is searched in memory, not through codes")
        self.gallery = gallery
        self.min_templates = ANN_MIN_TEMPLATES if min_templates is None else min_templates
        self.candidates = candidates
        self._index: CodeIndex | None = None
        self._version: int | None = None
        self._last_id = 0
        self._lock = threading.Lock()

    @property
    def index(self) -> CodeIndex | None:
        """The codes, or None while the gallery is below ``min_templates``."""
        return self._index

    def sync(self) -> bool:
        """Catch up with every write committed since the last sync; True if the codes changed."""
        with self._lock:
            return self._sync()

    def _sync(self) -> bool:
        version = self.gallery.write_version()  # read first: a newer state is never missed
        if version == self._version:
            return False
        changed = self._catch_up()
        self._version = version
        return changed

    def _catch_up(self) -> bool:
        if self._index is None:
            if self.gallery.template_count() < self.min_templates:
                return False
            return self._add_new_templates()
        added = self._add_new_templates()
        assert self._index is not None
        if self.gallery.template_count() == len(self._index):
            return added
        stored = self.gallery.template_ids()
        removed = self._index.remove(np.setdiff1d(self._index.ids, stored))
        return added or removed > 0

    def _add_new_templates(self) -> bool:
        """Encode every template with an id above the last one seen, a page at a time."""
        added = False
        while True:
            ids, vectors = self.gallery.template_vectors(self._last_id, PAGE)
            if len(ids) == 0:
                return added
            if self._index is None:
                self._index = CodeIndex(vectors.shape[1])
            self._index.add(ids, vectors)
            self._last_id = int(ids[-1])
            added = True

    def candidate_matrix(self, probes: FloatArray, k: int | None = None) -> TemplateMatrix:
        """Every template of the people among the ``k`` best codes of any probe.

        ``probes`` is ``(Q, D)`` unit-norm float32; ``k`` defaults to ``candidates``.
        Below ``min_templates`` this is the gallery's own (HNSW)
        :meth:`PostgresGallery.candidate_matrix`.
        """
        k = k or self.candidates
        with self._lock:  # a sync by another thread must not change the codes mid-search
            self._sync()
            index = self._index
            if index is None or len(index) < self.min_templates:
                ids = None
            else:
                ids, _ = index.search(np.atleast_2d(probes), k)
        if ids is None:
            return self.gallery.candidate_matrix(probes, k)
        return self.gallery.people_matrix(ids[ids > 0])
