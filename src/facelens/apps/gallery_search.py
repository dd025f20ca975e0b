"""How :class:`facelens.FaceLens` searches its gallery: the code index, the server, or exact.

:class:`GallerySearch` is the internal part of a lens that the CLI and the service
share (``lens.gallery_search``): they detect faces themselves (to bound the work
in flight, or to show progress) and then identify them here, keep the index in
step after they change the gallery, and build the search structures up front.
Users call ``FaceLens.identify``, ``enroll`` and ``erase``, which use it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facelens.gallery.store import GalleryStore, SearchServer
from facelens.index.gallery_index import GalleryIndex, index_path_for
from facelens.index.search import CANDIDATES
from facelens.match.calibration import Calibration, OperatingPoint
from facelens.match.decide import identify_faces
from facelens.match.scoring import Aggregation
from facelens.types import Face, Match

if TYPE_CHECKING:
    from facelens.index.postgres_codes import PostgresCodeIndex

__all__ = ["GallerySearch"]


class GallerySearch:
    """Searches a lens's gallery the fastest way that still scores every reported
    candidate exactly.

    Args:
        gallery: the lens's gallery (opened on first use).
        calibration: the calibration in force.
        operating_point: the lens's default operating point (used to screen enrollments).
        aggregation: the lens's default aggregation of a person's templates.
    """

    def __init__(
        self,
        gallery: Callable[[], GalleryStore],
        calibration: Callable[[], Calibration],
        operating_point: Callable[[], OperatingPoint],
        aggregation: Callable[[], Aggregation],
    ) -> None:
        self._gallery = gallery
        self._calibration = calibration
        self._operating_point = operating_point
        self._aggregation = aggregation
        self._index: GalleryIndex | None = None
        self.server_codes: PostgresCodeIndex | None = None

    @property
    def index(self) -> GalleryIndex | None:
        """The code index of the gallery (used from ``ANN_MIN_TEMPLATES`` templates on): beside
        the gallery's file (``GalleryStore.path``), or in memory only for an encrypted gallery
        (SQLite or PostgreSQL). None for a gallery in the clear with a search server."""
        gallery = self._gallery()
        if self._index is None and gallery.path is not None:
            self._index = GalleryIndex(index_path_for(gallery.path), persist=not gallery.encrypted)
        elif self._index is None and gallery.encrypted:
            self._index = GalleryIndex(Path("postgresql.codes.npz"), persist=False)
        return self._index

    def match(
        self,
        faces: list[Face],
        point: OperatingPoint,
        top_k: int = 5,
        aggregation: Aggregation | None = None,
    ) -> list[Match]:
        """Who is each embedded face, at ``point``? The gallery is searched the fastest way
        that still scores every reported candidate exactly:

        * a file, or any encrypted gallery: every template below ``ANN_MIN_TEMPLATES``,
          else the candidates of the code index (:attr:`index`);
        * a gallery with a search server (PostgreSQL in the clear): the server's HNSW
          index proposes the people among the ``CANDIDATES`` nearest templates of each
          face (``candidate_matrix``), and all their templates are scored here, so the
          whole gallery is never loaded. With ``$FACELENS_POSTGRES_SEARCH=codes`` this
          process's code index proposes them instead (:mod:`facelens.index.postgres_codes`).
        """
        aggregation = aggregation or self._aggregation()
        probes = [f.template.vector for f in faces if f.template is not None]
        server = self._searching_server()
        if server is not None and probes:
            templates = server.candidate_matrix(np.stack(probes), k=CANDIDATES)
            return identify_faces(faces, templates, point, self._calibration(), top_k, aggregation)
        return identify_faces(
            faces,
            self._gallery().template_matrix(),
            point,
            self._calibration(),
            top_k,
            aggregation,
            self.index,
        )

    def screen(self, faces: list[Face]) -> list[Match]:
        """Who each face already is in the gallery, before it is enrolled: people ranked by
        their best template (``max``, whatever the lens's aggregation), decided at the
        lens's default operating point (see :mod:`facelens.apps.enroll`)."""
        return self.match(faces, self._operating_point(), top_k=3, aggregation="max")

    def sync(self) -> None:
        """After an enrollment or erasure: bring an existing index in step (erased templates
        leave the index and its file at once)."""
        if self.server_codes is not None:
            self.server_codes.sync()
            return
        index = self.index
        if index is not None and index.exists:
            index.sync(self._gallery().template_matrix())

    def prepare(self) -> None:
        """Build the search structures now rather than at the first identification: the
        code index of a large gallery file or encrypted gallery, or, with
        ``$FACELENS_POSTGRES_SEARCH=codes``, the PostgreSQL code index (which reads
        every template once). The service calls it when it starts."""
        server = self._searching_server()
        if server is not None:
            if server is self.server_codes:  # the code index: read the templates now
                self.server_codes.sync()
            return
        index = self.index
        if index is not None:
            index.sync(self._gallery().template_matrix())

    def forget_server(self) -> None:
        """The gallery was closed: the server's code index goes with it."""
        self.server_codes = None

    def _searching_server(self) -> SearchServer | PostgresCodeIndex | None:
        """What proposes candidates for a gallery with a search server (PostgreSQL in the
        clear): the server (its HNSW index) or, with ``$FACELENS_POSTGRES_SEARCH=codes``,
        this process's code index over it. None for files and encrypted galleries
        (searched in memory)."""
        server = self._gallery().search_server
        if server is None:
            return None
        from facelens.index.postgres_codes import PostgresCodeIndex, postgres_search_mode

        if postgres_search_mode() == "hnsw":
            return server
        if self.server_codes is None or self.server_codes.gallery is not server:
            self.server_codes = PostgresCodeIndex(server)
        return self.server_codes
