"""Images that are themselves a face crop: analysed as one face instead of none.

FER2013's and CK+48's 48x48 crops, thumbnails cut by another tool, or a
face cropped by hand are often too tight for the detector (no forehead or
chin margin) and it finds nothing. :func:`attribute_faces` then takes the
whole image as one face: the expression template
(:data:`facelens.analysis.crops.EXPRESSION_TEMPLATE`) laid on its largest
centred square, so the expression crop is the image resized. This happens
when no face is found in an image no larger than
:data:`~facelens.analysis.crops.TIGHT_CROP_MAX_SIDE` pixels, or always when
the caller says the images are crops (``cropped=True``, ``--cropped``). In both cases only
an image that could hold a face is taken (:func:`could_be_a_face`): at least
:data:`MIN_SIDE` pixels a side and not flat (grey standard deviation at least
:data:`MIN_CONTRAST`); a 1x1 pixel or a plain grey square is no face to read an expression
or an age from.
"""

from __future__ import annotations

import numpy as np

from facelens.analysis.crops import TIGHT_CROP_MAX_SIDE, whole_image_landmarks
from facelens.io.image import DecodedImage
from facelens.pipeline.faces import FacePipeline
from facelens.types import Box, Detection, Face

__all__ = ["MIN_CONTRAST", "MIN_SIDE", "attribute_faces", "could_be_a_face"]

MIN_SIDE = 16
"""The smallest image side (pixels) taken for a face crop (FER2013's and CK+48's are 48)."""
MIN_CONTRAST = 8.0
"""The smallest standard deviation of an image's grey levels (0-255) taken for a face crop.
FER2013's training faces: 70 or more but for 2 blank images in 6,000; CK+48's: 30 or more."""


def whole_image_detection(width: int, height: int) -> Detection:
    """A detection covering a ``width`` x ``height`` pixel image that is a tight face crop.

    Its score is 0: nothing was detected.
    """
    landmarks = whole_image_landmarks(width, height)
    return Detection(Box(0.0, 0.0, float(width), float(height)), landmarks, 0.0)


def is_small(width: int, height: int) -> bool:
    """Whether an image is small enough to be taken for a face crop when no face is found."""
    return max(width, height) <= TIGHT_CROP_MAX_SIDE


def could_be_a_face(image: DecodedImage) -> bool:
    """Whether ``image`` could be a face crop: at least :data:`MIN_SIDE` px a side and not flat
    (its grey levels' standard deviation at least :data:`MIN_CONTRAST`)."""
    if min(image.width, image.height) < MIN_SIDE:
        return False
    grey = image.pixels.astype(np.float32).mean(axis=2)
    return float(grey.std()) >= MIN_CONTRAST


def attribute_faces(
    pipeline: FacePipeline, image: DecodedImage, faces: list[Face], *, cropped: bool = False
) -> tuple[list[Face], bool]:
    """The faces of ``image`` to analyse, and whether the whole image was taken as one face.

    ``faces`` are those the detector found. The whole image becomes the one
    face when ``cropped`` is set, or when no face was found and the image is
    small (:func:`is_small`); either way only if it :func:`could_be_a_face`
    (else no face).
    """
    if cropped and not could_be_a_face(image):
        return [], False
    if cropped or (not faces and is_small(image.width, image.height) and could_be_a_face(image)):
        detection = whole_image_detection(image.width, image.height)
        return pipeline.faces_at(image, [detection], embed=False), True
    return faces, False
