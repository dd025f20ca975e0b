"""Run a detector on a resized copy of the image; answer in the original pixels."""

from __future__ import annotations

import cv2
import numpy as np

from facelens.models.base import Detector
from facelens.types import Detection, ImageArray

__all__ = ["DEFAULT_MAX_SIDE", "LARGE_FACE", "MAX_UPSCALE", "detect_faces"]

DEFAULT_MAX_SIDE = 1280
"""Longest side, in pixels, of the copy the detector searches. Larger photos
are shrunk for the search only; alignment reads the original pixels."""

MAX_UPSCALE = 2.0
"""Smaller photos are searched enlarged, up to this factor (and up to
``max_side``): YuNet finds small and cut-off faces more reliably, and places
landmarks more precisely, on the enlarged copy. Measured on LFW: 99.27% mean
accuracy searching 250 px images as they are, 99.43% searching them at 2x
(benchmarks/lfw_accuracy.py, docs/benchmarks.md)."""

LARGE_FACE = 80.0
"""Shorter box side, in pixels of the copy searched, from which a face counts as large.
A photo that would be searched enlarged is first searched at its own size; when that finds
faces and every one is at least this large, the enlarged search is skipped (it costs up to
4x the pixels and buys landmark precision on small faces only). With ``coarse_first``, a
photo that would be searched shrunk is first searched at half that scale, with the same rule."""


def detect_faces(
    detector: Detector,
    image: ImageArray,
    max_side: int = DEFAULT_MAX_SIDE,
    max_upscale: float = MAX_UPSCALE,
    fast_shrink: bool = False,
    large_face: float | None = LARGE_FACE,
    coarse_first: bool = False,
) -> list[Detection]:
    """Faces of an RGB image, boxes and landmarks in the image's own pixels.

    The detector searches a copy scaled by ``min(max_upscale, max_side / longest side)``,
    shrunk by area averaging; ``fast_shrink`` shrinks by bilinear interpolation
    when the scale is at least 0.5 (about 7x cheaper for a 1280x720 frame to
    960x540; video loops that search many frames use it). A photo to be searched
    enlarged is first searched as it is; if every face found there is at least
    ``large_face`` pixels (:data:`LARGE_FACE`; None: always search enlarged), those
    faces are the answer. ``coarse_first``: a photo to be searched shrunk (larger than
    ``max_side``) is first searched at half that scale, by the same rule: if every face
    found there is at least ``large_face`` pixels of that copy, those faces are the answer
    (a quarter of the detector's work; a face too small to be found at half scale beside
    large ones is not searched for). Without faces, or with a small one, the full search
    runs as before.
    """
    height, width = image.shape[:2]
    scale = min(max_upscale, max_side / max(height, width))
    if abs(scale - 1.0) < 0.05:
        return detector.detect(image)
    if scale > 1.0 and large_face is not None:
        as_is = detector.detect(image)
        if _all_large(as_is, large_face):
            return as_is
    if scale < 1.0 and coarse_first and large_face is not None:
        coarse = _search_scaled(detector, image, scale / 2, fast_shrink)
        if _all_large(coarse, large_face * 2 / scale):  # large_face pixels of the coarse copy
            return coarse
    return _search_scaled(detector, image, scale, fast_shrink)


def _all_large(found: list[Detection], smallest: float) -> bool:
    """Whether faces were found and every box's shorter side is at least ``smallest`` pixels."""
    return bool(found) and min(min(d.box.width, d.box.height) for d in found) >= smallest


def _search_scaled(
    detector: Detector, image: ImageArray, scale: float, fast_shrink: bool
) -> list[Detection]:
    """The detector's faces on a copy scaled by ``scale``, in the image's own pixels."""
    height, width = image.shape[:2]
    area = scale < (0.5 if fast_shrink else 1.0)
    interpolation = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    searched = cv2.resize(image, size, interpolation=interpolation)
    factor_x, factor_y = width / searched.shape[1], height / searched.shape[0]
    return [
        Detection(
            d.box.scaled(factor_x, factor_y),
            (d.landmarks * np.array([factor_x, factor_y], dtype=np.float32)).astype(np.float32),
            d.score,
        )
        for d in detector.detect(np.asarray(searched, dtype=np.uint8))
    ]
