"""Run a detector on a size-capped copy of the image; answer in full-resolution pixels."""

from __future__ import annotations

import cv2
import numpy as np

from facelens.models.base import Detector
from facelens.types import Detection, ImageArray

DEFAULT_MAX_SIDE = 1280
"""Longest side, in pixels, of the copy the detector searches. Larger photos
are shrunk for the search only; alignment reads the original pixels."""


def detect_faces(
    detector: Detector, image: ImageArray, max_side: int = DEFAULT_MAX_SIDE
) -> list[Detection]:
    """Faces of an RGB image, boxes and landmarks in the image's own pixels."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale >= 1.0:
        return detector.detect(image)
    small = cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    factor_x, factor_y = width / small.shape[1], height / small.shape[0]
    factor = (factor_x + factor_y) / 2
    return [
        Detection(
            d.box.scaled(factor),
            (d.landmarks * np.array([factor_x, factor_y], dtype=np.float32)).astype(np.float32),
            d.score,
        )
        for d in detector.detect(small)
    ]
