"""The image-to-faces pipeline: decode -> detect -> align -> quality -> embed.

:class:`FacePipeline` is what every application uses. ``detect`` handles one
image and raises on bad input; ``detect_many`` streams results for many
images in input order and never stops on a bad one (the error travels with
its item): one worker thread per core takes a chunk of images, decodes,
detects and aligns them, and embeds all their faces in one batch.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from facelens import settings
from facelens.errors import FaceLensError
from facelens.io.image import (
    ChannelOrder,
    DecodedImage,
    ImageSource,
    load_image,
    source_label,
)
from facelens.models import registry
from facelens.models.base import Detector, Embedder, OwnAlignment
from facelens.models.fusion import embedder_parts
from facelens.models.runtime import resolve_providers
from facelens.models.sface import REFERENCE_LANDMARKS as SFACE_REFERENCE_LANDMARKS
from facelens.pipeline.align import align_face
from facelens.pipeline.detect import DEFAULT_MAX_SIDE, LARGE_FACE, MAX_UPSCALE, detect_faces
from facelens.pipeline.embed import DEFAULT_BATCH_SIZE, EMBED_BATCH_SIZE, embed_face_crops
from facelens.pipeline.face_choice import ONLY_FACE, FaceChoice, choose_face
from facelens.pipeline.quality import assess_quality
from facelens.types import Detection, Face, FloatArray, ImageArray, Template

__all__ = ["FacePipeline", "ImageFaces"]


@dataclass(eq=False)
class ImageFaces:
    """The faces of one image, or the error that kept it from being read."""

    source: str
    faces: list[Face] = field(default_factory=list)
    error: FaceLensError | None = None
    width: int = 0
    height: int = 0
    image: DecodedImage | None = field(default=None, repr=False)  # kept when asked for (drawing)
    notes: tuple[str, ...] = ()  # warnings about what was read (only an animation's first frame)

    @property
    def ok(self) -> bool:
        return self.error is None

    def enrollment_face(self, choice: FaceChoice = ONLY_FACE) -> Face | FaceLensError:
        """The face of this photo to enroll (:mod:`~facelens.pipeline.face_choice`: by default
        its one usable face), or the error that says why there is none."""
        if self.error is not None:
            return self.error
        return choose_face(self.faces, choice)


class FacePipeline:
    """Finds, aligns, rates and embeds faces.

    Args:
        detector: a :class:`Detector`, or a registered detector id.
        embedder: an :class:`Embedder`, or a registered embedder id.
        max_side: the detector searches a copy whose longest side is at most
            this many pixels; alignment uses the original.
        max_upscale: smaller images are searched enlarged by up to this factor.
        large_face: an image to be searched enlarged is first searched as it is, and
            not enlarged when every face found is at least this many pixels
            (:data:`~facelens.pipeline.detect.LARGE_FACE`); an image to be searched
            shrunk is first searched at half that scale, by the same rule (unless
            ``coarse_first`` is False); None: the full search (enlarged or shrunk to
            ``max_side``) always.
        coarse_first: large photos may be answered from the half-scale search (above).
            Video loops turn it off: a small face must not come and go with the large
            faces beside it.
        batch_size: images per chunk in ``detect_many`` (their faces are
            embedded together, ``EMBED_BATCH_SIZE`` crops a call).
        threads: onnxruntime threads per model (default: every core).
        max_pixels: images above this many pixels are refused (default:
            ``$FACELENS_MAX_PIXELS`` as the pipeline is made, else 64 MP).
        flip: add the mirror image's template to each face's (test-time
            augmentation; twice the embedding work, see docs/benchmarks.md).
        providers: onnxruntime execution providers of the models loaded by id, in
            order of preference (default: ``$FACELENS_PROVIDERS``, else the CPU);
            checked now (:class:`~facelens.errors.ProviderUnavailableError`).
    """

    def __init__(
        self,
        detector: Detector | str = registry.DEFAULT_DETECTOR,
        embedder: Embedder | str = registry.DEFAULT_EMBEDDER,
        *,
        max_side: int = DEFAULT_MAX_SIDE,
        max_upscale: float = MAX_UPSCALE,
        large_face: float | None = LARGE_FACE,
        coarse_first: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        max_pixels: int | None = None,
        flip: bool = False,
        providers: Sequence[str] | None = None,
    ) -> None:
        self.providers = resolve_providers(providers) if providers else None
        self._detector = detector
        self._embedder = embedder
        self.max_side = max_side
        self.max_upscale = max_upscale
        self.large_face = large_face
        self.coarse_first = coarse_first
        self.batch_size = batch_size
        self.flip = flip
        self.threads = threads
        self.max_pixels = settings.max_pixels() if max_pixels is None else max_pixels

    @property
    def detector(self) -> Detector:
        if isinstance(self._detector, str):
            self._detector = registry.load_detector(
                self._detector, self.threads, providers=self.providers
            )
        return self._detector

    @property
    def embedder(self) -> Embedder:
        if isinstance(self._embedder, str):
            self._embedder = registry.load_embedder(
                self._embedder, self.threads, providers=self.providers
            )
        return self._embedder

    @property
    def embedder_id(self) -> str:
        return self._embedder if isinstance(self._embedder, str) else self._embedder.model_id

    def load(self, source: ImageSource, channel_order: ChannelOrder = "RGB") -> DecodedImage:
        """Decode a source with this pipeline's pixel limit."""
        return load_image(source, channel_order=channel_order, max_pixels=self.max_pixels)

    def detect(
        self, source: ImageSource, *, embed: bool = True, channel_order: ChannelOrder = "RGB"
    ) -> list[Face]:
        """Every face of one image, largest first. Raises :class:`FaceLensError` on bad input."""
        image = self.load(source, channel_order)
        faces = self._faces_without_templates(image)
        return self.embed_faces(faces) if embed else faces

    def faces_at(
        self, image: DecodedImage, detections: list[Detection], *, embed: bool = True
    ) -> list[Face]:
        """Faces at given detections (e.g. a fallback crop when detection failed)."""
        faces = [self._face(image, d) for d in detections]
        return self.embed_faces(faces) if embed else faces

    def located_faces(self, image: DecodedImage, detections: list[Detection]) -> list[Face]:
        """Faces at given detections without the embedder's crops, so without loading it.

        For work that only needs where faces are (hiding every face of a video):
        box, landmarks and score as detected; quality measured on SFace's 112x112
        alignment (the same crop as the default embedder's first part). They
        cannot be embedded (``aligned`` is None).
        """
        return [
            Face(
                d.box,
                d.landmarks,
                d.score,
                assess_quality(d.landmarks, _quality_crop(image, d), d.score),
            )
            for d in detections
        ]

    def detect_many(
        self,
        sources: Iterable[ImageSource],
        *,
        embed: bool = True,
        keep_images: bool = False,
        fallback: Callable[[DecodedImage], list[Detection]] | None = None,
        workers: int | None = None,
        select: Callable[[ImageFaces], list[Face]] | None = None,
        embed_one_chunk_at_a_time: bool = False,
    ) -> Iterator[ImageFaces]:
        """Results for many images, in input order; a bad image yields its error, not an exception.

        Images are handled in chunks of ``batch_size``: a worker thread per
        core decodes, detects and aligns a chunk, then embeds all its faces in
        one batch, while the other workers do the same with the next chunks.

        ``fallback`` is called for an image where no face was found; the
        detections it returns are used instead (used by the LFW protocol).
        ``select`` keeps only the faces it returns for each image, before they
        are embedded: a protocol that scores one face per photo (LFW's central
        face) does not pay for embedding the others.
        ``embed_one_chunk_at_a_time`` lets the workers decode, detect and align
        in parallel but embed one chunk at a time (the embedders use every core
        themselves): less memory, since only one set of activations is alive.
        """
        worker_count = workers or os.cpu_count() or 1
        pending: deque[Future[list[ImageFaces]]] = deque()
        chunks = _chunks(sources, self.batch_size)
        embedding = threading.Lock() if embed_one_chunk_at_a_time else None
        with ThreadPoolExecutor(max_workers=worker_count) as pool:
            for chunk in chunks:
                pending.append(
                    pool.submit(
                        self._detect_chunk, chunk, embed, keep_images, fallback, select, embedding
                    )
                )
                if len(pending) >= 2 * worker_count:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()

    def _detect_chunk(
        self,
        chunk: list[ImageSource],
        embed: bool,
        keep_images: bool,
        fallback: Callable[[DecodedImage], list[Detection]] | None,
        select: Callable[[ImageFaces], list[Face]] | None = None,
        embedding: threading.Lock | None = None,
    ) -> list[ImageFaces]:
        results = [self._prepare(source, keep_images, fallback) for source in chunk]
        if select is not None:
            for result in results:
                if result.ok:
                    result.faces = select(result)
        if not embed:
            return results
        if embedding is None:
            return self._embed_results(results)
        with embedding:
            return self._embed_results(results)

    def _prepare(
        self,
        source: ImageSource,
        keep_image: bool,
        fallback: Callable[[DecodedImage], list[Detection]] | None,
    ) -> ImageFaces:
        label = source_label(source)
        try:
            image = self.load(source)
            faces = self._faces_without_templates(image)
            if not faces and fallback is not None:
                faces = [self._face(image, d) for d in fallback(image)]
        except FaceLensError as error:
            return ImageFaces(source=label, error=error)
        return ImageFaces(
            source=image.source,
            faces=faces,
            width=image.width,
            height=image.height,
            image=image if keep_image else None,
            notes=image.notes,
        )

    def _faces_without_templates(self, image: DecodedImage) -> list[Face]:
        detections = detect_faces(
            self.detector,
            image.pixels,
            self.max_side,
            self.max_upscale,
            large_face=self.large_face,
            coarse_first=self.coarse_first,
        )
        faces = [self._face(image, d) for d in detections]
        return sorted(faces, key=lambda f: -f.box.area)

    def _face(self, image: DecodedImage, detection: Detection) -> Face:
        crops = tuple(_crop_for(part, image, detection) for part in embedder_parts(self.embedder))
        quality = assess_quality(detection.landmarks, crops[0], detection.score)
        return Face(
            detection.box,
            detection.landmarks,
            detection.score,
            quality,
            None,
            crops[0],
            crops,
        )

    def embed_faces(self, faces: list[Face]) -> list[Face]:
        """Templates for faces found with ``embed=False`` (they carry their aligned crops).

        Lets a caller embed only the faces it needs, e.g. a video tracker's.
        """
        return self._attach(faces, self._embed(faces))

    def _embed(self, faces: list[Face]) -> FloatArray:
        crops_per_part = [
            [f.part_crops[i] for f in faces] for i in range(len(embedder_parts(self.embedder)))
        ]
        batch = min(self.batch_size, EMBED_BATCH_SIZE)  # small calls: less memory, same speed
        return embed_face_crops(self.embedder, crops_per_part, batch, self.flip)

    def _attach(self, faces: list[Face], vectors: FloatArray) -> list[Face]:
        """The faces with their templates (the per-part crops are dropped: only `aligned` stays)."""
        model_id = self.embedder.model_id
        return [
            replace(f, template=Template(v, model_id), part_crops=())
            for f, v in zip(faces, vectors, strict=True)
        ]

    def _embed_results(self, results: list[ImageFaces]) -> list[ImageFaces]:
        vectors = self._embed([f for r in results for f in r.faces])
        start = 0
        for result in results:
            count = len(result.faces)
            result.faces = self._attach(result.faces, vectors[start : start + count])
            start += count
        return results


def _quality_crop(image: DecodedImage, detection: Detection) -> ImageArray:
    """The RGB 112x112 crop aligned on SFace's reference landmarks, for :func:`assess_quality`."""
    return align_face(image.pixels, detection.landmarks, SFACE_REFERENCE_LANDMARKS, (112, 112))


def _crop_for(embedder: Embedder, image: DecodedImage, detection: Detection) -> ImageArray:
    """The crop ``embedder`` wants: cut by itself if it has its own alignment (dlib's), else
    the similarity alignment of the 5 landmarks onto its reference points."""
    if isinstance(embedder, OwnAlignment) and embedder.own_alignment:
        return embedder.align(image.pixels, detection)
    return align_face(
        image.pixels, detection.landmarks, embedder.reference_landmarks, embedder.input_size
    )


def _chunks(items: Iterable[ImageSource], size: int) -> Iterator[list[ImageSource]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk: list[ImageSource] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
