"""Planar YUV 4:2:0 (I420) images: the layout H.264 decoders produce and encoders take.

An I420 image of ``width x height`` pixels (both even) is one uint8 array of
shape ``(height * 3 // 2, width)``: ``height`` rows of luma (Y), then the two
chroma planes, U then V, each ``(height / 2, width / 2)``, stored one after the
other (OpenCV's ``COLOR_YUV2RGB_I420`` layout). Video code keeps frames in
this form so that a frame the detector does not search and that holds no face
is never converted to RGB and back (two conversions that cost more than
decoding it).

Conversions to and from RGB use OpenCV's BT.601 limited-range matrices. Every
conversion back is only of pixels that were converted forward here (a region
being hidden), so a colour matrix other than BT.601 shifts the colour of a
hidden patch slightly and leaves every other pixel untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelens.types import ImageArray

__all__ = [
    "YuvArray",
    "i420_patch",
    "i420_planes",
    "i420_size",
    "i420_to_rgb",
    "put_i420_patch",
    "rgb_to_i420",
]

YuvArray = np.ndarray
"""An I420 image: ``(height * 3 // 2, width)`` uint8 (see the module docstring)."""


def i420_size(yuv: YuvArray) -> tuple[int, int]:
    """``(width, height)`` in pixels of an I420 array."""
    return int(yuv.shape[1]), int(yuv.shape[0]) * 2 // 3


def i420_planes(yuv: YuvArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y ``(h, w)``, U ``(h/2, w/2)`` and V ``(h/2, w/2)`` planes (writes go through)."""
    width, height = i420_size(yuv)
    flat = yuv.reshape(-1)
    luma = width * height
    chroma = (width // 2) * (height // 2)
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return y, u, v


def i420_to_rgb(yuv: YuvArray) -> ImageArray:
    """The RGB uint8 ``(h, w, 3)`` image of an I420 array."""
    return np.asarray(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), np.uint8)


def rgb_to_i420(rgb: ImageArray) -> YuvArray:
    """The I420 array of an RGB uint8 image with even width and height."""
    height, width = rgb.shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"I420 needs an even width and height, got {width}x{height}")
    yuv: YuvArray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
    return yuv


def i420_patch(yuv: YuvArray, x0: int, y0: int, x1: int, y1: int) -> YuvArray:
    """A copy of the rectangle ``[x0, x1) x [y0, y1)`` (even bounds) as its own I420 array."""
    y, u, v = i420_planes(yuv)
    parts = (
        y[y0:y1, x0:x1],
        u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
        v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
    )
    patch: YuvArray = np.concatenate([p.reshape(-1) for p in parts]).reshape(
        (y1 - y0) * 3 // 2, x1 - x0
    )
    return patch


def put_i420_patch(yuv: YuvArray, patch: YuvArray, x0: int, y0: int) -> None:
    """Write an I420 ``patch`` (from :func:`i420_patch`) back at ``(x0, y0)`` (even)."""
    width, height = i420_size(patch)
    py, pu, pv = i420_planes(patch)
    y, u, v = i420_planes(yuv)
    y[y0 : y0 + height, x0 : x0 + width] = py
    u[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2] = pu
    v[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2] = pv
