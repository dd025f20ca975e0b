"""Safe decoding of images from whatever users hold: paths, bytes, arrays, PIL images."""

from facelens.io.image import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    ImageSource,
    load_image,
    source_label,
)
from facelens.io.walk import IMAGE_SUFFIXES, expand_image_paths

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "DecodedImage",
    "ImageSource",
    "expand_image_paths",
    "load_image",
    "source_label",
]
