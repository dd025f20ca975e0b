"""The small public API: one object that detects, enrolls, identifies and verifies.

>>> from facelens import FaceLens
>>> lens = FaceLens(gallery="people.db")
>>> lens.enroll("Ada", ["ada1.jpg", "ada2.jpg"])           # doctest: +SKIP
>>> for match in lens.identify("party.jpg"):               # doctest: +SKIP
...     print(match.identity, match.score, match.fmr)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from facelens.analysis.attributes import AnalyzedFace
from facelens.apps.enroll import EnrollReport, enroll_person
from facelens.apps.gallery_search import GallerySearch
from facelens.errors import GalleryNotEncryptedError
from facelens.gallery import GalleryStore, open_gallery, resolve_gallery, stored_model_id
from facelens.gallery.sqlite import stored_calibration
from facelens.gallery.store import CalibrationRecord
from facelens.io.image import ChannelOrder, ImageSource, source_label
from facelens.match.calibration import (
    Calibration,
    OperatingPoint,
    calibration_for,
    check_embedder,
    operating_point,
)
from facelens.match.decide import main_face, verify_faces
from facelens.match.scoring import Aggregation
from facelens.models import registry
from facelens.models.base import Detector, Embedder
from facelens.pipeline.detect import DEFAULT_MAX_SIDE
from facelens.pipeline.face_choice import FaceChoice
from facelens.pipeline.faces import FacePipeline, ImageFaces
from facelens.types import Face, Match, Person, Verification

if TYPE_CHECKING:
    from facelens.apps.video.results import TrackTimeline, VideoIdentification
    from facelens.cluster import FaceClusters
    from facelens.cluster.library_store import LibraryStore
    from facelens.ingest.library import Library
    from facelens.video.reader import VideoSource

__all__ = ["FaceLens", "LibraryOptions", "VideoOptions"]


class VideoOptions(TypedDict, total=False):
    """The options of :meth:`FaceLens.identify_video`, as keywords; a key left out takes
    the default of :func:`facelens.apps.video.identify.identify_video` (which says what
    each does): ``lens.identify_video("talk.mp4", every=2, draw_to="out.mp4")``."""

    every: int  # process every n-th frame
    fps: float | None  # or sample this many frames a second
    start: float | None  # seconds into the video
    end: float | None  # seconds into the video
    top_frames: int  # a track's best frames that decide its identity
    max_gap: float  # seconds a track may go unseen
    min_track_frames: int  # shorter tracks are dropped
    draw_to: str | Path | None  # a copy of the video with boxes and names
    progress: Callable[[int], None] | None  # called with frames done
    embed_all: bool  # embed every face, not only each track's best (slower)
    on_track: Callable[[TrackTimeline], None] | None  # each track, as soon as it is decided
    expressions: bool  # each track's expression over time


class LibraryOptions(TypedDict, total=False):
    """The options of :meth:`FaceLens.library`, as keywords (see
    :class:`facelens.ingest.library.Library`)."""

    video_fps: float  # frames a second read from videos
    min_quality: float  # faces below this quality are not grouped
    enroll_best: int  # a named group's best faces enrolled into the gallery


class FaceLens:
    """Face recognition with a gallery of known people.

    Args:
        gallery: path of the gallery file; defaults to ``$FACELENS_GALLERY``
            or the user's data folder. Opened on first use.
        detector: registered detector id, or a :class:`~facelens.models.base.Detector`.
        embedder: registered embedder id, or an
            :class:`~facelens.models.base.Embedder` (its ``model_id`` names it
            to the gallery); by default the one the gallery was made with (the
            default embedder for a new gallery). A gallery made by another
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
        providers: onnxruntime execution providers in order of preference, e.g.
            ``["CUDAExecutionProvider", "CPUExecutionProvider"]``; default
            ``$FACELENS_PROVIDERS``, else the CPU. Each must be available
            (:class:`~facelens.errors.ProviderUnavailableError` otherwise).
    """

    def __init__(
        self,
        gallery: str | Path | None = None,
        *,
        detector: str | Detector = registry.DEFAULT_DETECTOR,
        embedder: str | Embedder | None = None,
        fmr: float | None = None,
        threshold: float | None = None,
        max_side: int | None = None,
        threads: int | None = None,
        aggregation: Aggregation = "max",
        key_file: str | Path | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        if embedder is None:
            embedder = stored_model_id(resolve_gallery(gallery)) or registry.DEFAULT_EMBEDDER
        self.pipeline = FacePipeline(
            detector,
            embedder,
            threads=threads,
            max_side=max_side or DEFAULT_MAX_SIDE,
            providers=providers,
        )
        """The face pipeline (detector and embedder): what :meth:`detect` uses."""
        self._gallery_path = gallery
        self._key_file = key_file
        self._gallery: GalleryStore | None = None
        self._fmr = fmr
        self._threshold = threshold
        self.aggregation: Aggregation = aggregation
        self.gallery_search = GallerySearch(
            lambda: self.gallery,
            lambda: self.calibration,
            self.operating_point,
            lambda: self.aggregation,
        )
        """How the gallery is searched (for the CLI and the service, which detect faces
        themselves); users call :meth:`identify`."""

    @property
    def gallery(self) -> GalleryStore:
        if self._gallery is None:
            self._gallery = open_gallery(
                self._gallery_path, self.pipeline.embedder_id, key_file=self._key_file
            )
        return self._gallery

    @property
    def calibration(self) -> Calibration:
        """The calibration in force: the gallery's own (``facelens calibrate``), else the
        shipped one of the embedder; refused when it was fitted for another embedder, and
        for a user model that has none (:class:`NotCalibratedError`, with the command)."""
        stored = self._stored_calibration()
        if stored is None:
            return calibration_for(self.pipeline.embedder_id)
        calibration = Calibration.from_json(stored.record["calibration"])
        return check_embedder(calibration, self.pipeline.embedder_id)

    def _stored_calibration(self) -> CalibrationRecord | None:
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
        return self.pipeline.detect(image, channel_order=channel_order)

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
        from facelens.analysis.analyzer import AttributeAnalyzer
        from facelens.analysis.tight import attribute_faces

        decoded = self.pipeline.load(image, channel_order)
        found_faces = [] if cropped else self.pipeline.detect(decoded, embed=False)
        faces, whole = attribute_faces(self.pipeline, decoded, found_faces, cropped=cropped)
        attributes = AttributeAnalyzer(
            age_gender=age_gender,
            threads=self.pipeline.threads,
            expression_model=expression_model,
            providers=self.pipeline.providers,
        )
        found = attributes.analyze(decoded.pixels, faces)
        return [AnalyzedFace(f, a, whole) for f, a in zip(faces, found, strict=True)]

    def enroll(
        self,
        name: str,
        images: ImageSource | Iterable[ImageSource],
        *,
        force: bool = False,
        face: FaceChoice | str = "only",
    ) -> EnrollReport:
        """Add photos of ``name`` (created if new); see :class:`EnrollReport` for rejections.

        Each photo must hold one usable face unless ``face`` picks one: ``"largest"``, or
        ``"X,Y"`` (or ``FaceChoice(point=(x, y))``) for the face at that point of the photo,
        in its own pixels from the top-left corner. A photo whose face is already in the
        gallery is rejected (``duplicate``); one that another enrolled person matches better
        than ``name`` at this lens's operating point is rejected (``matches_other_person``)
        unless ``force``. The other photos are saved.
        """
        choice = face if isinstance(face, FaceChoice) else FaceChoice.parse(face)
        report = enroll_person(
            self.pipeline,
            self.gallery,
            name,
            _as_list(images),
            screen=self.gallery_search.screen,
            force=force,
            choice=choice,
        )
        self.gallery_search.sync()
        return report

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
        faces = self.pipeline.detect(image, channel_order=channel_order)
        return self.gallery_search.match(faces, self.operating_point(fmr, threshold), top_k)

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
        for result in self.pipeline.detect_many(images, keep_images=keep_images):
            yield result, self.gallery_search.match(result.faces, point, top_k)

    def identify_video(
        self,
        source: VideoSource,
        *,
        fmr: float | None = None,
        threshold: float | None = None,
        **options: Unpack[VideoOptions],
    ) -> VideoIdentification:
        """Track every face of a video (file, image sequence, webcam index or URL) and decide
        each track's identity once, from its best frames; ``options`` are
        :class:`VideoOptions` (``every``, ``fps``, ``start``, ``end``, ``top_frames``,
        ``draw_to``, ``progress``...)."""
        from facelens.apps.video.identify import identify_video

        return identify_video(
            source,
            self.pipeline,
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
        face_a = main_face(self.pipeline.detect(image_a), source_label(image_a))
        face_b = main_face(self.pipeline.detect(image_b), source_label(image_b))
        return verify_faces(face_a, face_b, self.operating_point(fmr, threshold), self.calibration)

    def people(self) -> list[Person]:
        return self.gallery.list_people()

    def rename(self, old: str, new: str) -> Person:
        """Rename a person, keeping their templates; the gallery's library follows
        (:meth:`_rename_in_libraries`), so their appearances keep their name."""
        person = self.gallery.rename_person(old, new)
        self._rename_in_libraries(old.strip(), person.name)
        return person

    def _library_places(self) -> list[Path | str]:
        """The gallery's library and, beside a gallery file, an older cluster index or library
        file: those that exist."""
        from facelens.cluster.clusterer import default_index_path
        from facelens.cluster.library_store import library_exists, library_location

        places: set[Path | str] = {library_location(self._gallery_path)}
        places.add(default_index_path(self._gallery_path))
        location = resolve_gallery(self._gallery_path)
        if isinstance(location, Path):  # a gallery file: its library and older cluster index
            places |= {
                location.with_name(location.stem + s) for s in (".library.db", ".clusters.db")
            }
        return [place for place in sorted(places, key=str) if library_exists(place)]

    def _library_by_name(self, place: Path | str) -> LibraryStore:
        """The library at ``place`` for work on names only (erase, rename): with this lens's
        key, or without one where the library was made before the key (names need none)."""
        from facelens.cluster.library_store import open_library_store

        try:
            return self._cluster_store(place)
        except GalleryNotEncryptedError:
            return open_library_store(place, self.pipeline.embedder_id)

    def _rename_in_libraries(self, old: str, new: str) -> None:
        """Carry a person's rename into the libraries: the group named ``old``, the faces
        enrolled as ``old`` and every "not ``old``" said of a face now say ``new``. (Renaming
        a group in the library renames the gallery's person the same way.)"""
        for place in self._library_places():
            store = self._library_by_name(place)
            try:
                group, taken = store.group_named(old), store.group_named(new)
                refused = store.not_person(old)
                with store.write() as db:
                    if group is not None and taken is None:
                        store.set_name(db, group.id, new)
                        store.log(db, "rename", {"group": group.id, "name": new, "was": old})
                    store.rename_enrolled(db, old, new)
                    store.remove_not_person(db, refused, old)
                    for face_id in refused:
                        store.add_not_person(db, face_id, new)
            finally:
                store.close()

    def erase(self, name: str) -> int:
        """Remove a person and every trace of them; returns the templates removed.

        Traces are the gallery's templates and crops, the search index's codes,
        and, when a cluster index sits beside the gallery (``facelens cluster``),
        the faces of the group named after them there (:meth:`_erase_cluster_group`).
        """
        removed = self.gallery.erase_person(name)
        self.gallery_search.sync()
        self._erase_cluster_group(name)
        return removed

    def _erase_cluster_group(self, name: str) -> int:
        """Erase ``name`` from the gallery's library (and from an older cluster index or
        library file there), if it exists: the faces of the group named after them
        (templates and crops), every "not this person" said about them; no byte left in
        the live files. Returns the faces erased."""
        erased = 0
        for place in self._library_places():
            store = self._library_by_name(place)
            try:
                erased += store.forget_person(name.strip())
            finally:
                store.close()
        return erased

    def clusters(self, index: str | Path | None = None) -> FaceClusters:
        """Groups of unknown faces (``facelens.cluster``), kept in the library at ``index``
        (default: the gallery's, see ``library_location``); named groups are enrolled into
        this lens's gallery. Close it when done."""
        from facelens.cluster import FaceClusters
        from facelens.cluster.library_store import library_location

        store = self._cluster_store(library_location(self._gallery_path, index))
        return FaceClusters(self.pipeline, store, lambda: self.gallery, owns_gallery=False)

    def library(self, path: str | Path | None = None, **options: Unpack[LibraryOptions]) -> Library:
        """The library (``facelens.ingest.library``) at ``path`` (default: the gallery's: a
        file beside a SQLite gallery, tables in a PostgreSQL gallery's database; see
        ``library_location``): scans, groups, people's appearances; named groups are
        enrolled into this lens's gallery. ``options`` (:class:`LibraryOptions`) go to
        :class:`Library`. Close it
        when done."""
        from facelens.ingest.library import Library

        return Library(self.clusters(path), **options)

    def _cluster_store(self, location: Path | str) -> LibraryStore:
        """The library at ``location``, sealed with the gallery's key when one is in force."""
        from facelens.cluster.library_store import open_library_store
        from facelens.gallery.protection import resolve_gallery_key

        cipher = resolve_gallery_key(self._key_file)
        return open_library_store(location, self.pipeline.embedder_id, cipher=cipher)

    def close(self) -> None:
        if self._gallery is not None:
            self._gallery.close()
            self._gallery = None
            self.gallery_search.forget_server()

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
