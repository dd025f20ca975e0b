"""Similarity alignment of a face onto an embedder's 5-point template.

The transform (rotation, uniform scale, translation) that best maps the
detected landmarks onto the template is found in closed form (Umeyama, 1991).
Crops are always cut from the full-resolution image; when the face is much
larger than the crop, its region is first shrunk with area averaging so the
crop is not aliased.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelens.types import FloatArray, ImageArray

__all__ = ["align_face", "similarity_transform"]


def similarity_transform(source: FloatArray, target: FloatArray) -> np.ndarray:
    """The 2x3 matrix of the least-squares similarity taking ``source`` points to ``target``.

    Both are ``(N, 2)`` arrays of ``(x, y)``.
    """
    src = source.astype(np.float64)
    dst = target.astype(np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float((singular * np.diag(sign)).sum() / variance) if variance > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(
    image: ImageArray,
    landmarks: FloatArray,
    reference: FloatArray,
    size: tuple[int, int],
) -> ImageArray:
    """Cut the ``size`` (width, height) crop that puts ``landmarks`` on ``reference``.

    ``image`` is RGB uint8 at full resolution; the crop is RGB uint8 too.
    """
    matrix = similarity_transform(landmarks, reference)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        image, landmarks = _shrink_region(image, landmarks, matrix, size, scale)
        matrix = similarity_transform(landmarks, reference)
    crop = cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return np.ascontiguousarray(crop)


def _shrink_region(
    image: ImageArray,
    landmarks: FloatArray,
    matrix: np.ndarray,
    size: tuple[int, int],
    scale: float,
) -> tuple[ImageArray, FloatArray]:
    """The face's region, area-downsampled so the remaining warp scale is about 1."""
    inverse = cv2.invertAffineTransform(matrix)
    width, height = size
    corners = np.array(
        [[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], dtype=np.float64
    )
    mapped = corners @ inverse.T
    x0, y0 = np.floor(mapped.min(0)).astype(int) - 2
    x1, y1 = np.ceil(mapped.max(0)).astype(int) + 2
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(image.shape[1], x1), min(image.shape[0], y1)
    region = image[y0:y1, x0:x1]
    new_w, new_h = max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))
    small = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    factors = np.array([new_w / region.shape[1], new_h / region.shape[0]], dtype=np.float32)
    shifted = ((landmarks - np.array([x0, y0], dtype=np.float32)) * factors).astype(np.float32)
    return np.asarray(small, dtype=np.uint8), shifted
