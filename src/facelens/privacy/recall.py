"""Finding faces to hide: recall first (a face left visible is the failure that matters).

Anonymization searches differently from recognition, which wants few false
faces: a false face hidden costs a few pixels, a real face missed costs a
person's privacy. :func:`find_faces_to_hide`:

* **lower score threshold**: faces from :data:`HIDE_SCORE_THRESHOLD` (0.5)
  up, not the recognizer's 0.6;
* **dark frames brightened**: when the searched copy's mean luma is below
  :data:`DARK_LUMA` (80 of 255), it is multiplied by the gain that brings its
  mean to :data:`TARGET_LUMA` (110; at most :data:`MAX_GAIN`) before the search
  (stage, night, audience shots: YuNet misses faces at 4% of their brightness
  that it finds after the gain; a gamma curve, tried first, found fewer, as it
  flattens the faces' contrast). From a gain of :data:`DENOISE_FROM_GAIN` (4)
  the copy is first smoothed (gaussian, sigma :data:`DENOISE_SIGMA` = 1.5 px):
  the gain multiplies the codec's noise and the 8-bit steps of a dark frame
  into blotches that hide a face's features (fast head turns at 4%
  brightness, frames of d12 saved as JPEG: 18 of 46 faces found without,
  46 with; CLAHE after the gain found fewer, 14);
* **small faces in large frames**: the copy searched has at most ``side``
  pixels on its longer side (:func:`search_side`: 960, and 1280 for frames of
  1600 px and more, so a 1080p frame is searched at 1280x720 and its 20 px
  faces are 13 px to the detector, not 10).

Still images (:func:`find_faces_in_image`) have time for more: the whole
image is searched as the recognizer searches it (longer side
:data:`~facelens.pipeline.detect.DEFAULT_MAX_SIDE`, small images enlarged up
to 2x), then again in overlapping **tiles** of :data:`TILE_SIDE` pixels of a
copy twice as large as the whole pass's (at most 2x the original, so
``--max-side`` still sets the cost): a 4000 px photo is shrunk 3.1x for the
whole pass, so its 30 px faces are 10 px to the detector, and they are 19 px
in the tiles. Both passes
use the lower threshold and the dark-frame gain; their faces are merged (a face
found twice is kept once, with its higher score).

Boxes and landmarks are returned in the frame's own pixels.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from facelens.models.base import Detector
from facelens.pipeline.detect import DEFAULT_MAX_SIDE, MAX_UPSCALE
from facelens.types import Box, Detection, ImageArray

__all__ = [
    "LARGE_SIDE",
    "find_faces_in_image",
    "find_faces_to_hide",
    "hiding_detector",
    "merge_faces",
    "search_side",
    "tiles",
]

HIDE_SCORE_THRESHOLD = 0.5
"""YuNet score from which a face is hidden (the recognizer's own threshold is 0.6)."""
DARK_LUMA = 80.0
"""A searched copy whose mean luma (0-255) is below this is brightened first."""
TARGET_LUMA = 110.0
"""The mean luma (0-255) the brightening gain aims at."""
MAX_GAIN = 40.0
"""The largest brightening gain (a frame at 1/40 of a normal exposure)."""
DENOISE_FROM_GAIN = 4.0
"""From this brightening gain on, the copy is smoothed before it is brightened."""
DENOISE_SIGMA = 1.5
"""Gaussian sigma, in pixels of the searched copy, of that smoothing."""


LARGE_FRAME = 1600
"""Frames whose longer side has at least this many pixels are searched at :data:`LARGE_SIDE`."""
LARGE_SIDE = 1280
"""Longest side, in pixels, of the copy of a large frame that is searched."""


def search_side(width: int, height: int, side: int) -> int:
    """The longest side of the searched copy: ``side``, raised to :data:`LARGE_SIDE` for large
    frames (never above the frame's own)."""
    longest = max(width, height)
    return min(longest, max(side, LARGE_SIDE) if longest >= LARGE_FRAME else side)


def hiding_detector(detector: Detector, threshold: float = HIDE_SCORE_THRESHOLD) -> Detector:
    """``detector`` with the lower score threshold of hiding (a shallow copy sharing its model;
    a detector without a ``score_threshold`` is returned as it is)."""
    if not hasattr(detector, "score_threshold"):
        return detector
    lowered = copy.copy(detector)
    lowered.score_threshold = min(threshold, float(detector.score_threshold))
    return lowered


def brightened(pixels: ImageArray) -> ImageArray:
    """``pixels`` (RGB uint8) brightened by a linear gain when dark (smoothed first when very
    dark), else as they are."""
    luma = cv2.mean(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))[0]  # numpy's, without its copy
    if luma >= DARK_LUMA:
        return pixels
    gain = min(MAX_GAIN, TARGET_LUMA / max(luma, 1.0))
    if gain >= DENOISE_FROM_GAIN:
        smooth = cv2.GaussianBlur(pixels.astype(np.float32), (0, 0), DENOISE_SIGMA)
        return np.ascontiguousarray(np.clip(smooth * gain, 0, 255).astype(np.uint8))
    return np.ascontiguousarray(cv2.convertScaleAbs(pixels, alpha=gain))


TILE_SIDE = 960
"""Side, in pixels of the enlarged copy, of the tiles still images are searched in."""
TILE_OVERLAP = 192
"""Overlap of neighbouring tiles, in pixels of the enlarged copy (a face up to this size is
whole in at least one tile; larger faces are found by the whole-image pass)."""
TILE_UPSCALE = 2.0
"""Largest enlargement of the copy the tiles are cut from."""
SAME_FACE_IOU = 0.4
"""Two boxes overlapping at least this much (intersection over union) are one face."""


def find_faces_in_image(
    detector: Detector, pixels: ImageArray, side: int = DEFAULT_MAX_SIDE
) -> list[Detection]:
    """Faces of an RGB still image for hiding: the whole image searched at ``side`` px (up to
    :data:`~facelens.pipeline.detect.MAX_UPSCALE` enlarged), then tiles of a copy enlarged
    by :func:`tile_scale` (module docstring); boxes in the image's pixels, largest first.

    ``detector`` should come from :func:`hiding_detector`.
    """
    height, width = pixels.shape[:2]
    whole = min(MAX_UPSCALE, side / max(height, width))
    found = _search(detector, pixels, whole)
    scale = tile_scale(width, height, side)
    big_w, big_h = max(1, round(width * scale)), max(1, round(height * scale))
    if max(big_w, big_h) > side or scale > whole * 1.05:
        for x0, y0, x1, y1 in tiles(big_w, big_h):
            # the tile in the original's pixels, searched at ``scale``
            ox0, oy0 = int(x0 / scale), int(y0 / scale)
            ox1, oy1 = min(width, int(np.ceil(x1 / scale))), min(height, int(np.ceil(y1 / scale)))
            crop = np.ascontiguousarray(pixels[oy0:oy1, ox0:ox1])
            for d in _search(detector, crop, scale):
                enlarged = Box(
                    (d.box.x + ox0) * scale,
                    (d.box.y + oy0) * scale,
                    d.box.width * scale,
                    d.box.height * scale,
                )
                if not _small_and_whole(enlarged, (x0, y0, x1, y1), (big_w, big_h)):
                    continue
                found.append(
                    Detection(
                        Box(d.box.x + ox0, d.box.y + oy0, d.box.width, d.box.height),
                        (d.landmarks + np.array([ox0, oy0], np.float32)).astype(np.float32),
                        d.score,
                    )
                )
    return sorted(merge_faces(found), key=lambda d: -d.box.area)


def tile_scale(width: int, height: int, side: int = DEFAULT_MAX_SIDE) -> float:
    """Enlargement of the copy tiles are cut from: twice the whole pass's, at most
    :data:`TILE_UPSCALE`."""
    whole = min(MAX_UPSCALE, side / max(width, height))
    return min(TILE_UPSCALE, 2.0 * whole)


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` tiles of :data:`TILE_SIDE` px overlapping by :data:`TILE_OVERLAP`
    that cover a ``width x height`` image (the last row and column end at its edges)."""

    def starts(length: int) -> list[int]:
        if length <= TILE_SIDE:
            return [0]
        step = TILE_SIDE - TILE_OVERLAP
        count = int(np.ceil((length - TILE_SIDE) / step)) + 1
        return [min(i * step, length - TILE_SIDE) for i in range(count)]

    return [
        (x, y, min(width, x + TILE_SIDE), min(height, y + TILE_SIDE))
        for y in starts(height)
        for x in starts(width)
    ]


def merge_faces(found: list[Detection]) -> list[Detection]:
    """One detection per face: of boxes overlapping by :data:`SAME_FACE_IOU` or more, or one
    mostly (80%) inside another, the higher score is kept."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if all(not _same_face(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


def _small_and_whole(box: Box, tile: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """Whether a face a tile found is one the tiles are for: ``box`` in the enlarged copy's
    pixels, ``tile`` ``(x0, y0, x1, y1)`` of the copy, ``size`` the copy's ``(width, height)``.
    At most :data:`TILE_OVERLAP` px (larger faces are the whole pass's) and not touching an
    edge the tile shares with its neighbours (a face that small is whole in one of them)."""
    if max(box.width, box.height) > TILE_OVERLAP:
        return False
    x0, y0, x1, y1 = tile
    return not (
        (x0 > 0 and box.x <= x0 + 2)
        or (y0 > 0 and box.y <= y0 + 2)
        or (x1 < size[0] and box.x + box.width >= x1 - 2)
        or (y1 < size[1] and box.y + box.height >= y1 - 2)
    )


def _same_face(a: Box, b: Box) -> bool:
    ix = max(0.0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    if inter <= 0:
        return False
    union = a.area + b.area - inter
    return inter / union >= SAME_FACE_IOU or inter >= 0.8 * min(a.area, b.area)


def _search(detector: Detector, pixels: ImageArray, scale: float) -> list[Detection]:
    """Faces of ``pixels`` searched on a copy scaled by ``scale`` (brightened when dark),
    in ``pixels``' own coordinates."""
    height, width = pixels.shape[:2]
    searched: ImageArray = pixels
    if abs(scale - 1.0) < 0.05:
        scale = 1.0
    else:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        searched = np.asarray(cv2.resize(pixels, size, interpolation=interpolation), np.uint8)
    searched = brightened(searched)
    found = detector.detect(np.ascontiguousarray(searched))
    if scale == 1.0:
        return found
    fx, fy = width / searched.shape[1], height / searched.shape[0]
    return [
        Detection(
            d.box.scaled(fx, fy),
            (d.landmarks * np.array([fx, fy], dtype=np.float32)).astype(np.float32),
            d.score,
        )
        for d in found
    ]


def find_faces_to_hide(detector: Detector, pixels: ImageArray, side: int) -> list[Detection]:
    """Faces of an RGB frame for hiding (see the module docstring), in the frame's pixels.

    ``detector`` should come from :func:`hiding_detector`. The frame is searched on a
    copy whose longer side is at most ``side`` pixels (never enlarged), brightened when dark.
    """
    height, width = pixels.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale < 0.95:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
        searched = cv2.resize(pixels, size, interpolation=interpolation)
    else:
        searched, scale = pixels, 1.0
    searched = brightened(np.asarray(searched, dtype=np.uint8))
    found = detector.detect(searched)
    if scale == 1.0:
        return found
    fx, fy = width / searched.shape[1], height / searched.shape[0]
    return [
        Detection(
            d.box.scaled(fx, fy),
            (d.landmarks * np.array([fx, fy], dtype=np.float32)).astype(np.float32),
            d.score,
        )
        for d in found
    ]
