"""Processing one batch of work items into faces: the part that runs where the models are.

:class:`Processor` holds a :class:`FacePipeline` (the models) and turns work
items into :class:`ItemResult` values: plain arrays, small to send between
processes (Ray) and ready to store. It is the same code locally and in Ray
actors. A bad item yields a result with its error; it never stops the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from facelens.cluster.ingest import crop_jpeg
from facelens.errors import FaceLensError
from facelens.ingest.sources import WorkItem
from facelens.io.image import ImageSource
from facelens.pipeline.detect import DEFAULT_MAX_SIDE
from facelens.pipeline.face_choice import ONLY_FACE, FaceChoice
from facelens.pipeline.faces import FacePipeline, ImageFaces
from facelens.types import Face

__all__ = ["ItemResult", "ProcessOptions", "Processor", "batches"]

Target = Literal["scan", "gallery"]


@dataclass(frozen=True)
class ProcessOptions:
    """How items are processed.

    ``target``: ``scan`` keeps every face found; ``gallery`` keeps the face
    ``face`` picks in each photo (enrollment rules: by default its one usable
    face; ``largest`` for photos with other faces in the background) or the
    reason there is none.
    ``video_fps``: frames per second of video time searched for faces.
    ``threads``: pipeline threads (onnxruntime threads per model and chunk
    workers); None = every core. ``crops``: keep each face's aligned crop.
    """

    embedder: str
    detector: str
    target: Target = "scan"
    video_fps: float = 2.0
    threads: int | None = None
    max_side: int | None = None
    crops: bool = False  # keep each face's aligned crop as JPEG (the library's thumbnails)
    face: FaceChoice = ONLY_FACE  # which face of a photo to enroll (target "gallery")


@dataclass(eq=False)
class ItemResult:
    """The faces of one item: parallel arrays, one row per face.

    ``boxes`` ``(F, 4)`` ``[x, y, width, height]`` in pixels of the image (or
    frame); ``frame_index`` ``(F,)`` (-1 for still images) and ``time`` ``(F,)``
    seconds into a video (NaN for images); ``vectors`` ``(F, D)`` unit-norm
    float32 templates. ``error`` is set (and the arrays empty) when the item
    failed; ``error_code`` is then the :class:`~facelens.errors.FaceLensError` code
    where one is known (``multiple_faces``, ``no_face``, ...).
    """

    source: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    detector_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    qualities: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    error: str | None = None
    error_code: str | None = None
    frames: int = 0  # frames searched (1 for an image)
    crops: list[bytes | None] = field(default_factory=list)  # JPEG per face, when asked for
    width: int = 0  # of the image (or the video's frames), in pixels
    height: int = 0

    @property
    def count(self) -> int:
        return len(self.boxes)


class Processor:
    """Turns work items into :class:`ItemResult` with one set of models (see module docstring)."""

    def __init__(self, options: ProcessOptions, pipeline: FacePipeline | None = None) -> None:
        self.options = options
        self.pipeline = pipeline or FacePipeline(
            options.detector,
            options.embedder,
            threads=options.threads,
            max_side=options.max_side or DEFAULT_MAX_SIDE,
        )

    def run(self, items: list[tuple[WorkItem, bytes | None]]) -> list[ItemResult]:
        """Results for ``items`` in order; an item's bytes, when given, are used instead of
        reading its path (so workers need no shared file system for images)."""
        results: dict[int, ItemResult] = {}
        images = [(i, item, data) for i, (item, data) in enumerate(items) if item.kind == "image"]
        sources: list[ImageSource] = [
            data if data is not None else item.source for _, item, data in images
        ]
        analyzed = self.pipeline.detect_many(sources, workers=self.options.threads)
        for (i, item, _), faces in zip(images, analyzed, strict=True):
            results[i] = self._image_result(item.source, faces)
        for i, (item, _) in enumerate(items):
            if item.kind == "video":
                results[i] = self._video_result(item.source)
        return [results[i] for i in range(len(items))]

    def _image_result(self, source: str, analyzed: ImageFaces) -> ItemResult:
        if analyzed.error is not None:
            return ItemResult(source, error=str(analyzed.error))
        if self.options.target == "gallery":
            chosen = analyzed.enrollment_face(self.options.face)
            if isinstance(chosen, FaceLensError):
                return ItemResult(source, error=str(chosen), error_code=chosen.code, frames=1)
            return _result(source, [(chosen, -1, float("nan"))], frames=1)
        found = [(f, -1, float("nan")) for f in analyzed.faces]
        result = _result(source, found, frames=1, crops=self.options.crops)
        return replace(result, width=analyzed.width, height=analyzed.height)

    def _video_result(self, source: str) -> ItemResult:
        from facelens.video.reader import open_video

        found: list[tuple[Face, int, float]] = []
        frames = width = height = 0
        try:
            with open_video(source, fps=self.options.video_fps) as reader:
                for frame in reader:
                    frames += 1
                    width, height = frame.width, frame.height
                    faces = self.pipeline.detect(frame.as_image())
                    found.extend((face, frame.index, frame.time) for face in faces)
        except FaceLensError as error:
            if not found:
                return ItemResult(source, error=str(error), frames=frames)
        result = _result(source, found, frames=frames, crops=self.options.crops)
        return replace(result, width=width, height=height)


def _result(
    source: str, found: list[tuple[Face, int, float]], frames: int, crops: bool = False
) -> ItemResult:
    faces = [face for face, _, _ in found if face.template is not None]
    if not faces:
        return ItemResult(source, frames=frames)
    return ItemResult(
        source,
        boxes=np.array([f.box.as_list() for f in faces], np.float32).reshape(-1, 4),
        detector_scores=np.array([f.score for f in faces], np.float32),
        qualities=np.array([f.quality.value for f in faces], np.float32),
        frame_index=np.array([i for f, i, _ in found if f.template is not None], np.int64),
        time=np.array([t for f, _, t in found if f.template is not None], np.float64),
        vectors=np.stack([_vector(f) for f in faces]).astype(np.float32),
        frames=frames,
        crops=[crop_jpeg(f.aligned) for f in faces] if crops else [],
    )


def _vector(face: Face) -> np.ndarray:
    assert face.template is not None
    return face.template.vector


def batches(items: list[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
