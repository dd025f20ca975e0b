"""Decode any supported image source into one RGB ``uint8`` array.

This is the only place where colour order and pixel depth are decided:

* paths, ``bytes`` and PIL images go through Pillow; EXIF orientation is
  applied (a plain colour JPEG's pixels are decoded by OpenCV's libjpeg-turbo,
  which gives the same pixels as Pillow's with less CPU time, see
  :func:`_decode_plain_jpeg`), the first frame of an animation (or page of a TIFF) is used and
  the image's ``notes`` say so, and every mode
  (grey, grey+alpha, RGBA, palette, CMYK, 16-bit, 32-bit float) is mapped to
  8-bit RGB. Transparent pixels are composited onto white.
* numpy arrays are taken as they are, in the colour order the caller states
  (``"RGB"``, the default, or ``"BGR"`` as OpenCV produces); grey, RGBA and
  16-bit arrays are converted too.

Images larger than ``max_pixels`` are refused *before* their pixels are
decoded, which also guards against decompression bombs.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facelens import settings
from facelens.errors import (
    ImageDecodeError,
    ImageNotFoundError,
    ImageTooLargeError,
    InputNotReadableError,
    UnsupportedInputError,
)
from facelens.types import ImageArray

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ChannelOrder",
    "DecodedImage",
    "ImageSource",
    "load_image",
    "open_user_file",
    "source_label",
]

ImageSource = Union[
    str, os.PathLike[str], bytes, bytearray, np.ndarray, Image.Image, "DecodedImage"
]
"""Anything :func:`load_image` accepts."""

ChannelOrder = Literal["RGB", "BGR"]

DEFAULT_MAX_PIXELS = settings.DEFAULT_MAX_PIXELS
"""Largest image accepted, in pixels (width x height), where ``FACELENS_MAX_PIXELS`` is
not set (64 MP). The variable is read when an image is loaded without ``max_pixels``."""


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """An image ready for the pipeline: ``pixels`` is ``(H, W, 3)`` uint8 RGB.

    ``notes`` are warnings about what was read, in words (e.g. only the first
    frame of an animated GIF); callers pass them on to the user.
    """

    pixels: ImageArray
    source: str  # a label for reports: the path, or "<bytes>", "<array>", "<PIL image>"
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def source_label(source: object) -> str:
    """How a source is named in results: its path, or the kind of object it is."""
    if isinstance(source, DecodedImage):
        return source.source
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, np.ndarray):
        return "<array>"
    if isinstance(source, Image.Image):
        return "<PIL image>"
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    return f"<{type(source).__name__}>"


def load_image(
    source: ImageSource,
    *,
    channel_order: ChannelOrder = "RGB",
    max_pixels: int | None = None,
    label: str | None = None,
) -> DecodedImage:
    """Decode ``source`` into an RGB uint8 image.

    Args:
        source: a file path, encoded bytes, a numpy array or a PIL image.
        channel_order: colour order of a 3- or 4-channel numpy array (ignored
            for other sources, whose order is known).
        max_pixels: refuse images with more pixels than this (default:
            ``$FACELENS_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`).
        label: how the image is named in results; defaults to the path or the
            kind of source.

    Raises:
        ImageNotFoundError: the path does not exist.
        InputNotReadableError: the file (or a folder on its path) cannot be read
            by this user, e.g. no read permission.
        ImageTooLargeError: the image has more than ``max_pixels`` pixels.
        ImageDecodeError: the data is not a readable image.
        UnsupportedInputError: the source is of a type facelens cannot read.
    """
    if isinstance(source, DecodedImage):
        return source
    if max_pixels is None:
        max_pixels = settings.max_pixels()
    name = label or source_label(source)
    if isinstance(source, np.ndarray):
        return DecodedImage(_from_array(source, channel_order, max_pixels), name)
    if isinstance(source, Image.Image):
        return DecodedImage(_from_pil(source, max_pixels, name), name, _frames_note(source, name))
    if isinstance(source, (bytes, bytearray)):
        return _open_and_convert(bytes(source), max_pixels, name)
    if isinstance(source, (str, os.PathLike)):
        with open_user_file(Path(source)) as handle:
            try:
                data = handle.read()
            except OSError as exc:
                raise ImageDecodeError(f"{name}: could not read the file ({exc})") from exc
        return _open_and_convert(data, max_pixels, name)
    raise UnsupportedInputError(
        f"cannot read an image from a {type(source).__name__}; "
        "pass a path, bytes, a numpy array or a PIL image"
    )


def open_user_file(path: Path) -> BinaryIO:
    """Open a file the user named, for reading bytes; each way this fails is a
    :class:`FaceLensError` that names the path (never a bare ``OSError``).

    Raises:
        ImageNotFoundError: nothing at ``path``.
        InputNotReadableError: no permission to read the file, or to search a
            folder on its path.
        UnsupportedInputError: a folder, or not a regular file (a FIFO, a device).
        ImageDecodeError: any other error of the operating system.
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            if not os.access(path, os.R_OK | os.X_OK):
                raise InputNotReadableError(
                    f"{path}: a folder that cannot be read (permission denied); "
                    "its files were skipped"
                )
            raise UnsupportedInputError(f"{path}: a folder, not an image file")
        if not stat.S_ISREG(mode):
            raise UnsupportedInputError(f"{path}: not a regular file")
        return path.open("rb")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ImageNotFoundError(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise InputNotReadableError(
            f"{path}: permission denied (this user cannot read the file; check its permissions)"
        ) from exc
    except OSError as exc:
        raise ImageDecodeError(f"{path}: could not read the file ({exc.strerror or exc})") from exc


def _frames_note(image: Image.Image, name: str) -> tuple[str, ...]:
    """A warning when ``image`` holds more than one picture (only the first is used)."""
    frames = int(getattr(image, "n_frames", 1))
    if frames <= 1 or image.format == "MPO":  # MPO: a camera JPEG's extra preview pictures
        return ()
    if image.format == "TIFF":
        kind, what = f"a {frames}-page TIFF", "pages"
    else:
        kind, what = f"an animated {image.format or 'image'} of {frames} frames", "frames"
    return (
        f"{name}: {kind}; only the first was read "
        f"(extract the {what} as separate images to use the others)",
    )


def _check_size(width: int, height: int, max_pixels: int, name: str) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} = {width * height:,} pixels is above the limit of "
            f"{max_pixels:,}; downscale the image or raise FACELENS_MAX_PIXELS"
        )
    if width == 0 or height == 0:
        raise ImageDecodeError(f"{name}: the image is empty ({width}x{height})")


def _bomb_refused(
    error: Image.DecompressionBombError, max_pixels: int, name: str
) -> ImageTooLargeError:
    """Pillow refuses images over twice its own limit while reading the header, before our
    check: the same message as :func:`_check_size`, with the size Pillow read."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(found.group(1)):,} pixels" if found else "the image"
    return ImageTooLargeError(
        f"{name}: {size} is above the limit of {max_pixels:,}; "
        "downscale the image or raise FACELENS_MAX_PIXELS"
    )


def _open_and_convert(data: bytes, max_pixels: int, name: str) -> DecodedImage:
    if not data:
        raise ImageDecodeError(f"{name}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own limit is checked below; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _bomb_refused(exc, max_pixels, name) from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"{name}: not an image, or an image format facelens cannot read "
            "(JPEG, PNG, WEBP, GIF, BMP, TIFF and PGM are supported)"
        ) from exc
    except OSError as exc:
        raise ImageDecodeError(f"{name}: could not read the file ({exc})") from exc
    with image:
        pixels = _decode_plain_jpeg(image, data, max_pixels, name)
        if pixels is None:
            pixels = _from_pil(image, max_pixels, name)
        return DecodedImage(pixels, name, _frames_note(image, name))


def _decode_plain_jpeg(
    image: Image.Image, data: bytes, max_pixels: int, name: str
) -> ImageArray | None:
    """The pixels of a plain colour JPEG (one picture, YCbCr or RGB, complete), decoded by
    OpenCV with its EXIF orientation applied; None for anything else (Pillow decodes it).

    OpenCV and Pillow both decode with libjpeg-turbo's defaults (accurate integer
    IDCT, smooth chroma upsampling), so the pixels are the same (``tests/test_io.py``
    compares them for every orientation); OpenCV writes them once into the array,
    where Pillow's path copies them twice more: 15-30% less CPU on large photos
    (``benchmarks/jpeg_decode.py``; docs/benchmarks.md, "Service under load"). A file that does not
    end with the JPEG end marker may be truncated: Pillow reads it, and refuses it.
    """
    if image.format != "JPEG" or image.mode != "RGB" or not data.endswith(b"\xff\xd9"):
        return None
    _check_size(image.width, image.height, max_pixels, name)
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3:
        return None
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def _from_pil(image: Image.Image, max_pixels: int, name: str) -> ImageArray:
    _check_size(image.width, image.height, max_pixels, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"{name}: the image data is damaged or truncated ({exc})") from exc
    return _pil_to_rgb(image)


def _pil_to_rgb(image: Image.Image) -> ImageArray:
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _grey_to_rgb(_to_uint8(np.asarray(image)))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _from_array(array: np.ndarray, channel_order: ChannelOrder, max_pixels: int) -> ImageArray:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UnsupportedInputError(
            f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}"
        )
    _check_size(int(array.shape[1]), int(array.shape[0]), max_pixels, "<array>")
    pixels = _to_uint8(array)
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return _grey_to_rgb(pixels.reshape(pixels.shape[0], pixels.shape[1]))
    pixels = pixels[:, :, :3]
    if channel_order == "BGR":
        pixels = pixels[:, :, ::-1]
    elif channel_order != "RGB":
        raise UnsupportedInputError(f"channel_order must be 'RGB' or 'BGR', not {channel_order!r}")
    return np.ascontiguousarray(pixels)


def _to_uint8(array: np.ndarray) -> ImageArray:
    """Map any pixel depth to uint8: 16-bit scales by 1/257, floats in [0, 1] by 255."""
    if array.dtype == np.uint8:
        return np.asarray(array, dtype=np.uint8)
    if array.dtype == np.bool_:
        return np.where(array, 255, 0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float32))
        scale = 255.0 if finite.size and float(finite.max()) <= 1.0 else 1.0
        scaled: np.ndarray = np.clip(finite * scale, 0, 255)
        return scaled.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        wide = array.astype(np.int64)
        peak = int(wide.max()) if wide.size else 0
        if peak > 255:
            return np.clip(wide // 257, 0, 255).astype(np.uint8)
        return np.clip(wide, 0, 255).astype(np.uint8)
    raise UnsupportedInputError(f"unsupported pixel type {array.dtype}")


def _grey_to_rgb(grey: np.ndarray) -> ImageArray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
