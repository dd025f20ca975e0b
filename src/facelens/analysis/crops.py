"""The face crops the attribute models expect, cut upright from the full image.

Each model was trained on its own kind of crop, so each gets its own 5-point
template (where the landmarks go, as fractions of the crop's width and height,
``(x, y)``, image-left eye first). The crop is the similarity transform that
puts the detected landmarks on the template (:func:`facelens.pipeline.align.align_face`),
so a tilted head comes out upright.

* Expression (mini-Xception, trained on FER2013's 48x48 crops): the mean
  landmark position over 197 CK+48 crops (every 5th image; YuNet on the crops
  upscaled to 192 px), mirrored to be left-right symmetric. CK+48 crops are
  registered like FER2013's: tight, eyebrows to chin. Measured by
  ``benchmarks/expression_accuracy.py --measure-template``.
* Age and gender (HSE FaceRes): its authors cut the MTCNN box plus 10 px on
  each side; here the ArcFace template (eyebrows to chin) widened by 20 %.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelens.pipeline.align import align_face
from facelens.types import FloatArray, ImageArray

__all__ = [
    "TIGHT_CROP_MAX_SIDE",
    "age_gender_crop",
    "expression_crop",
    "resize_grey",
    "whole_image_landmarks",
]

EXPRESSION_TEMPLATE = np.array(
    [[0.315, 0.3925], [0.685, 0.3925], [0.5, 0.589], [0.347, 0.75], [0.653, 0.75]],
    dtype=np.float32,
)
"""Landmarks in a FER2013/CK+48-style crop, as fractions of its side."""

_ARCFACE_TEMPLATE = np.array(
    [[0.342, 0.462], [0.657, 0.460], [0.500, 0.641], [0.371, 0.825], [0.632, 0.823]],
    dtype=np.float32,
)
AGE_GENDER_MARGIN = 1.2
AGE_GENDER_TEMPLATE = (0.5 + (_ARCFACE_TEMPLATE - 0.5) / AGE_GENDER_MARGIN).astype(np.float32)
"""Landmarks in the loose crop given to the age/gender model, as fractions of its side."""


def template_crop(
    image: ImageArray, landmarks: FloatArray, template: FloatArray, size: int
) -> ImageArray:
    """The ``size`` x ``size`` RGB crop of ``image`` that puts ``landmarks`` on ``template``.

    ``image`` is RGB uint8 at full resolution, ``landmarks`` ``(5, 2)`` pixels
    ``(x, y)``; ``template`` is in fractions of the crop side.
    """
    return align_face(image, landmarks, template * np.float32(size), (size, size))


def expression_crop(image: ImageArray, landmarks: FloatArray, size: int = 64) -> np.ndarray:
    """The grey ``size`` x ``size`` uint8 crop for the expression model (ITU-R 601 luma)."""
    rgb = template_crop(image, landmarks, EXPRESSION_TEMPLATE, size)
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def age_gender_crop(image: ImageArray, landmarks: FloatArray, size: int = 224) -> ImageArray:
    """The RGB ``size`` x ``size`` uint8 crop for the age/gender model."""
    return template_crop(image, landmarks, AGE_GENDER_TEMPLATE, size)


TIGHT_CROP_MAX_SIDE = 128
"""Images no larger than this (pixels, longest side) in which no face is found are taken
to be face crops themselves (e.g. FER2013's and CK+48's 48x48 crops)."""


def whole_image_landmarks(width: int, height: int) -> FloatArray:
    """The 5 landmarks of a tight face crop of ``width`` x ``height`` pixels: the
    expression template placed on the largest centred square of the image.

    Cutting :func:`expression_crop` at these landmarks resizes that square to
    the model's input, so a crop registered like FER2013's stays as it is.
    """
    side = float(min(width, height))
    offset = np.array([(width - side) / 2, (height - side) / 2], dtype=np.float32)
    return (EXPRESSION_TEMPLATE * np.float32(side) + offset).astype(np.float32)


def resize_grey(crop: np.ndarray, size: int = 64) -> np.ndarray:
    """An already-cropped face (grey ``(H, W)`` or RGB ``(H, W, 3)`` uint8) resized to
    ``size`` x ``size`` grey, for crops that need no detection (e.g. CK+48)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    resized = cv2.resize(grey, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized, dtype=np.uint8)
