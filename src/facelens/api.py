"""The small public API: one object that detects, enrolls, identifies and verifies.

>>> from facelens import FaceLens
>>> lens = FaceLens(gallery="people.db")
>>> lens.enroll("Ada", ["ada1.jpg", "ada2.jpg"])           # doctest: +SKIP
>>> for match in lens.identify("party.jpg"):               # doctest: +SKIP
...     print(match.identity, match.score, match.fmr)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facelens.analysis.attributes import AnalyzedFace
from facelens.apps.enroll import EnrollReport, enroll_person
from facelens.errors import GalleryNotEncryptedError
from facelens.gallery import (
    GalleryStore,
    SQLiteGallery,
    open_gallery,
    resolve_gallery,
    stored_model_id,
)
from facelens.gallery.sqlite import stored_calibration
from facelens.gallery.store import CalibrationRecord
from facelens.index.gallery_index import GalleryIndex, index_path_for
from facelens.index.search import CANDIDATES
from facelens.io.image import ChannelOrder, ImageSource, source_label
from facelens.match.calibration import (
    Calibration,
    OperatingPoint,
    calibration_for,
    check_embedder,
    operating_point,
)
from facelens.match.decide import identify_faces, main_face, verify_faces
from facelens.match.scoring import Aggregation
from facelens.models import registry
from facelens.pipeline.analyzer import FaceAnalyzer, ImageFaces
from facelens.pipeline.detect import DEFAULT_MAX_SIDE
from facelens.types import Face, Match, Person, Verification

if TYPE_CHECKING:
    from facelens.apps.video.results import VideoIdentification
    from facelens.cluster import FaceClusters
    from facelens.cluster.store import ClusterStore
    from facelens.gallery.postgres import PostgresGallery
    from facelens.index.postgres_codes import PostgresCodeIndex
    from facelens.ingest.library import Library
    from facelens.video.reader import VideoSource


class FaceLens:
    """Face recognition with a gallery of known people.

    Args:
        gallery: path of the gallery file; defaults to ``$FACELENS_GALLERY``
            or the user's data folder. Opened on first use.
        detector: registered detector id.
        embedder: registered embedder id; by default the one the gallery was
            made with (SFace for a new gallery). A gallery made by another
            embedder is refused.
        fmr: default operating point, as a false-match rate per comparison.
        threshold: a raw cosine threshold instead of ``fmr``.
        max_side: longest side of the copy the detector searches, in pixels.
        aggregation: how a person's several templates make one score: ``max``
            (the best template; the default, the one the shipped calibration
            describes) or ``centroid`` (quality-weighted mean template: better
            rank-1 on LFW, but its impostor scores run higher than the
            calibration assumes; see docs/benchmarks.md).
        key_file: the gallery's template key file; default
            ``$FACELENS_GALLERY_KEY_FILE``, else ``$FACELENS_GALLERY_KEY``, else
            none (see ``facelens.gallery.protection``).
    """

    def __init__(
        self,
        gallery: str | Path | None = None,
        *,
        detector: str = registry.DEFAULT_DETECTOR,
        embedder: str | None = None,
        fmr: float | None = None,
        threshold: float | None = None,
        max_side: int | None = None,
        threads: int | None = None,
        aggregation: Aggregation = "max",
        key_file: str | Path | None = None,
    ) -> None:
        if embedder is None:
            embedder = stored_model_id(resolve_gallery(gallery)) or registry.DEFAULT_EMBEDDER
        self.analyzer = FaceAnalyzer(
            detector, embedder, threads=threads, max_side=max_side or DEFAULT_MAX_SIDE
        )
        self._gallery_path = gallery
        self._key_file = key_file
        self._gallery: GalleryStore | None = None
        self._index: GalleryIndex | None = None
        self._server_codes: PostgresCodeIndex | None = None
        self._fmr = fmr
        self._threshold = threshold
        self.aggregation: Aggregation = aggregation

    @property
    def gallery(self) -> GalleryStore:
        if self._gallery is None:
            self._gallery = open_gallery(
                self._gallery_path, self.analyzer.embedder_id, key_file=self._key_file
            )
        return self._gallery

    @property
    def search_index(self) -> GalleryIndex | None:
        """The code index of the gallery (used from ``ANN_MIN_TEMPLATES`` templates on): beside
        a SQLite gallery's file, or in memory only for an encrypted gallery (SQLite or
        PostgreSQL). None for a PostgreSQL gallery in the clear: its server searches."""
        gallery = self.gallery
        if self._index is None and isinstance(gallery, SQLiteGallery):
            self._index = GalleryIndex(index_path_for(gallery.path), persist=not gallery.encrypted)
        elif self._index is None and getattr(gallery, "encrypted", False):
            self._index = GalleryIndex(Path("postgresql.codes.npz"), persist=False)
        return self._index

    def match_faces(
        self,
        faces: list[Face],
        point: OperatingPoint,
        top_k: int = 5,
        aggregation: Aggregation | None = None,
    ) -> list[Match]:
        """Who is each embedded face, at ``point``? The gallery is searched the fastest way
        that still scores every reported candidate exactly:

        * SQLite, or any encrypted gallery: every template below ``ANN_MIN_TEMPLATES``,
          else the candidates of the code index (:attr:`search_index`);
        * PostgreSQL in the clear: the server's HNSW index proposes the people among the
          ``CANDIDATES`` nearest templates of each face (``candidate_matrix``), and all
          their templates are scored here, so the whole gallery is never loaded. With
          ``$FACELENS_POSTGRES_SEARCH=codes`` this process's code index proposes them
          instead (:mod:`facelens.index.postgres_codes`).
        """
        aggregation = aggregation or self.aggregation
        probes = [f.template.vector for f in faces if f.template is not None]
        server = self._searching_server()
        if server is not None and probes:
            templates = server.candidate_matrix(np.stack(probes), k=CANDIDATES)
            return identify_faces(faces, templates, point, self.calibration, top_k, aggregation)
        gallery = self.gallery
        return identify_faces(
            faces,
            gallery.template_matrix(),
            point,
            self.calibration,
            top_k,
            aggregation,
            self.search_index,
        )

    def sync_index(self) -> None:
        """After an enrollment or erasure: bring an existing index in step (erased templates
        leave the index and its file at once)."""
        if self._server_codes is not None:
            self._server_codes.sync()
            return
        index = self.search_index
        if index is not None and index.exists:
            index.sync(self.gallery.template_matrix())

    def prepare_search(self) -> None:
        """Build the search structures now rather than at the first identification: the
        code index of a large SQLite or encrypted gallery, or, with
        ``$FACELENS_POSTGRES_SEARCH=codes``, the PostgreSQL code index (which reads
        every template once). The service calls it when it starts."""
        server = self._searching_server()
        if server is not None:
            if server is self._server_codes:  # the code index: read the templates now
                self._server_codes.sync()
            return
        index = self.search_index
        if index is not None:
            index.sync(self.gallery.template_matrix())

    def _searching_server(self) -> PostgresGallery | PostgresCodeIndex | None:
        """What proposes candidates for a PostgreSQL gallery in the clear: the gallery (its
        server's HNSW index) or, with ``$FACELENS_POSTGRES_SEARCH=codes``, this process's
        code index over it. None for SQLite and encrypted galleries (searched in memory)."""
        gallery = self.gallery
        if isinstance(gallery, SQLiteGallery) or getattr(gallery, "encrypted", False):
            return None
        from facelens.gallery.postgres import PostgresGallery  # psycopg: PostgreSQL only
        from facelens.index.postgres_codes import PostgresCodeIndex, postgres_search_mode

        if not isinstance(gallery, PostgresGallery):
            return None
        if postgres_search_mode() == "hnsw":
            return gallery
        if self._server_codes is None or self._server_codes.gallery is not gallery:
            self._server_codes = PostgresCodeIndex(gallery)
        return self._server_codes

    @property
    def calibration(self) -> Calibration:
        """The calibration in force: the gallery's own (``facelens calibrate``), else the
        shipped one of the embedder; refused when it was fitted for another embedder, and
        for a user model that has none (:class:`NotCalibratedError`, with the command)."""
        stored = self.stored_calibration()
        if stored is None:
            return calibration_for(self.analyzer.embedder_id)
        calibration = Calibration.from_json(stored.record["calibration"])
        return check_embedder(calibration, self.analyzer.embedder_id)

    def stored_calibration(self) -> CalibrationRecord | None:
        """The gallery's calibration in force, read without creating the gallery file (or
        needing its key) when it is not open yet; None when there is none."""
        if self._gallery is not None:
            return self._gallery.calibration()
        location = resolve_gallery(self._gallery_path)
        if isinstance(location, Path):
            return stored_calibration(location)
        return self.gallery.calibration()

    def operating_point(
        self, fmr: float | None = None, threshold: float | None = None
    ) -> OperatingPoint:
        """The threshold and false-match rate in force (call arguments over defaults)."""
        if fmr is None and threshold is None:
            fmr, threshold = self._fmr, self._threshold
        return operating_point(self.calibration, fmr=fmr, threshold=threshold)

    def detect(self, image: ImageSource, *, channel_order: ChannelOrder = "RGB") -> list[Face]:
        """Every face of an image with box, landmarks, score, quality and template."""
        return self.analyzer.analyze(image, channel_order=channel_order)

    def analyze(
        self,
        image: ImageSource,
        *,
        age_gender: bool = True,
        channel_order: ChannelOrder = "RGB",
        cropped: bool = False,
        expression_model: str | None = None,
    ) -> list[AnalyzedFace]:
        """Every face of ``image``, largest first, with its apparent attributes: expression
        (7 probabilities), and apparent age and gender unless ``age_gender=False``.

        An image that is itself a tight face crop (``cropped=True``, or a small image
        where no face is found) is analysed as one face with ``cropped`` set.
        ``expression_model`` picks another expression model by id.
        """
        from facelens.analysis.analyzer import DEFAULT_EXPRESSION_MODEL, AttributeAnalyzer
        from facelens.analysis.tight import attribute_faces

        decoded = self.analyzer.load(image, channel_order)
        found_faces = [] if cropped else self.analyzer.analyze(decoded, embed=False)
        faces, whole = attribute_faces(self.analyzer, decoded, found_faces, cropped=cropped)
        attributes = AttributeAnalyzer(
            age_gender=age_gender,
            threads=self.analyzer.threads,
            expression_model=expression_model or DEFAULT_EXPRESSION_MODEL,
        )
        found = attributes.analyze(decoded.pixels, faces)
        return [AnalyzedFace(f, a, whole) for f, a in zip(faces, found, strict=True)]

    def enroll(
        self, name: str, images: ImageSource | Iterable[ImageSource], *, force: bool = False
    ) -> EnrollReport:
        """Add photos of ``name`` (created if new); see :class:`EnrollReport` for rejections.

        A photo whose face is already in the gallery is rejected (``duplicate``); one that
        another enrolled person matches better than ``name`` at this lens's operating point
        is rejected (``matches_other_person``) unless ``force``. The other photos are saved.
        """
        report = enroll_person(
            self.analyzer,
            self.gallery,
            name,
            _as_list(images),
            screen=self.screen_faces,
            force=force,
        )
        self.sync_index()
        return report

    def screen_faces(self, faces: list[Face]) -> list[Match]:
        """Who each face already is in the gallery, before it is enrolled: people ranked by
        their best template (``max``, whatever this lens's aggregation), decided at this
        lens's default operating point (see :mod:`facelens.apps.enroll`)."""
        return self.match_faces(faces, self.operating_point(), top_k=3, aggregation="max")

    def identify(
        self,
        image: ImageSource,
        *,
        fmr: float | None = None,
        threshold: float | None = None,
        top_k: int = 5,
        channel_order: ChannelOrder = "RGB",
    ) -> list[Match]:
        """Who is each face of ``image``? ``identity`` is ``None`` for unknown faces."""
        faces = self.analyzer.analyze(image, channel_order=channel_order)
        return self.match_faces(faces, self.operating_point(fmr, threshold), top_k)

    def identify_many(
        self,
        images: Iterable[ImageSource],
        *,
        fmr: float | None = None,
        threshold: float | None = None,
        top_k: int = 5,
        keep_images: bool = False,
    ) -> Iterator[tuple[ImageFaces, list[Match]]]:
        """Identification over many images, streamed; a bad image carries its error."""
        point = self.operating_point(fmr, threshold)
        for result in self.analyzer.analyze_many(images, keep_images=keep_images):
            yield result, self.match_faces(result.faces, point, top_k)

    def identify_video(
        self,
        source: VideoSource,
        *,
        fmr: float | None = None,
        threshold: float | None = None,
        **options: Any,
    ) -> VideoIdentification:
        """Track every face of a video (file, image sequence, webcam index or URL) and decide
        each track's identity once, from its best frames; see
        :func:`facelens.apps.video.identify.identify_video` for ``options`` (``every``,
        ``fps``, ``start``, ``end``, ``top_frames``, ``draw_to``, ``progress``...)."""
        from facelens.apps.video.identify import identify_video

        return identify_video(
            source,
            self.analyzer,
            self.gallery.template_matrix(),
            self.operating_point(fmr, threshold),
            self.calibration,
            aggregation=self.aggregation,
            **options,
        )

    def verify(
        self,
        image_a: ImageSource,
        image_b: ImageSource,
        *,
        fmr: float | None = None,
        threshold: float | None = None,
    ) -> Verification:
        """Are the main (largest) faces of two images the same person?"""
        face_a = main_face(self.analyzer.analyze(image_a), source_label(image_a))
        face_b = main_face(self.analyzer.analyze(image_b), source_label(image_b))
        return verify_faces(face_a, face_b, self.operating_point(fmr, threshold), self.calibration)

    def people(self) -> list[Person]:
        return self.gallery.list_people()

    def rename(self, old: str, new: str) -> Person:
        return self.gallery.rename_person(old, new)

    def erase(self, name: str) -> int:
        """Remove a person and every trace of them; returns the templates removed.

        Traces are the gallery's templates and crops, the search index's codes,
        and, when a cluster index sits beside the gallery (``facelens cluster``),
        the faces of the group named after them there (:meth:`erase_cluster_group`).
        """
        removed = self.gallery.erase_person(name)
        self.sync_index()
        self.erase_cluster_group(name)
        return removed

    def erase_cluster_group(self, name: str) -> int:
        """Erase ``name`` from the library beside the gallery (and from an older cluster
        index there), if it exists: the faces of the group named after them (templates
        and crops), every "not this person" said about them; no byte left. Returns the
        faces erased."""
        from facelens.cluster.clusterer import default_index_path

        paths = {default_index_path(self._gallery_path)}
        location = resolve_gallery(self._gallery_path)
        if isinstance(location, Path):  # a gallery file: its library and older cluster index
            paths |= {
                location.with_name(location.stem + s) for s in (".library.db", ".clusters.db")
            }
        erased = 0
        for path in sorted(paths):
            if not path.exists():
                continue
            try:
                store = self._cluster_store(path)
            except GalleryNotEncryptedError:  # an index made before the key: erase needs none
                from facelens.cluster.store import ClusterStore

                store = ClusterStore(path, self.analyzer.embedder_id)
            try:
                erased += store.forget_person(name.strip())
            finally:
                store.close()
        return erased

    def clusters(self, index: str | Path | None = None) -> FaceClusters:
        """Groups of unknown faces (``facelens.cluster``), kept in ``index`` (default: beside
        the gallery); named groups are enrolled into this lens's gallery. Close it when done."""
        from facelens.cluster import FaceClusters, default_index_path

        store = self._cluster_store(Path(index or default_index_path(self._gallery_path)))
        return FaceClusters(self.analyzer, store, lambda: self.gallery, owns_gallery=False)

    def library(self, path: str | Path | None = None, **options: Any) -> Library:
        """The library (``facelens.ingest.library``) at ``path`` (default: beside the
        gallery, see ``default_library_path``): scans, groups, people's appearances; named
        groups are enrolled into this lens's gallery. ``options`` go to :class:`Library`.
        Close it when done."""
        from facelens.ingest.library import Library

        return Library(self.clusters(path), **options)

    def _cluster_store(self, path: Path) -> ClusterStore:
        """The cluster index at ``path``, sealed with the gallery's key when one is in force."""
        from facelens.cluster.store import ClusterStore
        from facelens.gallery.protection import resolve_gallery_key

        cipher = resolve_gallery_key(self._key_file)
        return ClusterStore(path, self.analyzer.embedder_id, cipher=cipher)

    def close(self) -> None:
        if self._gallery is not None:
            self._gallery.close()
            self._gallery = None
            self._server_codes = None

    def __enter__(self) -> FaceLens:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_list(images: ImageSource | Iterable[ImageSource]) -> list[ImageSource]:
    if isinstance(images, (str, Path, bytes, bytearray)) or not isinstance(images, Iterable):
        return [images]
    import numpy as np

    if isinstance(images, np.ndarray):
        return [images]
    return list(images)
