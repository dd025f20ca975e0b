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
  flattens the faces' contrast);
* **small faces in large frames**: the copy searched has at most ``side``
  pixels on its longer side (:func:`search_side`: 960, and 1280 for frames of
  1600 px and more, so a 1080p frame is searched at 1280x720 and its 20 px
  faces are 13 px to the detector, not 10).

Boxes and landmarks are returned in the frame's own pixels.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from facelens.models.base import Detector
from facelens.types import Detection, ImageArray

__all__ = ["find_faces_to_hide", "hiding_detector", "search_side"]

HIDE_SCORE_THRESHOLD = 0.5
"""YuNet score from which a face is hidden (the recognizer's own threshold is 0.6)."""
DARK_LUMA = 80.0
"""A searched copy whose mean luma (0-255) is below this is brightened first."""
TARGET_LUMA = 110.0
"""The mean luma (0-255) the brightening gain aims at."""
MAX_GAIN = 40.0
"""The largest brightening gain (a frame at 1/40 of a normal exposure)."""


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
    """``pixels`` (RGB uint8) brightened by a linear gain when dark, else as they are."""
    luma = float(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).mean())
    if luma >= DARK_LUMA:
        return pixels
    gain = min(MAX_GAIN, TARGET_LUMA / max(luma, 1.0))
    return np.ascontiguousarray(cv2.convertScaleAbs(pixels, alpha=gain))


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
