"""How to anonymize a region: gaussian blur, pixelate, solid box, elliptical mask.

Every method works in place on an RGB uint8 image (``(height, width, 3)``)
and changes only the pixels of the given regions. The strength scales with
the region, so a face is hidden equally at any size:

* ``blur``: gaussian blur with sigma = ``BLUR_SIGMA_FRACTION`` (1/6) of the
  region's longer side (computed on a copy shrunk until sigma is 3 px, which
  blurs the same at a cost that does not grow with the region), so nothing
  finer than about a third of the face survives, then grain (below);
* ``pixelate``: blocks of ``1/PIXELATE_BLOCKS`` (1/8) of the region's longer
  side, each the mean colour of its pixels, then grain;
* grain (blur and pixelate): gaussian noise of ``NOISE_LEVEL`` (120 of 255;
  ``BLUR_NOISE_LEVEL``, 60, after blur, where 120 made CenterFace see a face)
  standard deviation at the centres of ``NOISE_CELLS`` (48) cells along the
  region's longer side, linearly interpolated between them (about 80 levels
  over the region, clipped to 0-255), so it scales with the face. A blur or a
  mosaic alone keeps the face's colours in place, and SFace given the original
  photo matched 1-7% of LFW faces to it at FMR 1e-2; with the grain, none. A
  weaker grain (45 levels) looked like a face to dlib's ResNet: grey plus that
  grain, with no face in it at all, "matched" 1-3 of 100 LFW originals, and
  blurred faces matched other people's originals at 0.5-3% (at 120: 0.02-0.7%;
  docs/benchmarks.md#anonymization-privacy). The
  grain is one random field per process, drawn from the OS's entropy: the same
  in every frame (averaging frames does not remove it) and unknown to anyone
  who reads this code (it cannot be subtracted). ``Strength.grain`` picks
  another field (1, 2, ...: each drawn the same way the first time it is
  asked for): :mod:`facelens.privacy.verify` redraws a face with a fresh grain;
* ``box``: the whole region filled with one colour (``Strength.fill``, black
  by default);
* ``ellipse``: the ellipse inscribed in the region filled with one colour
  (the corners of the region, outside the head, stay visible).

:func:`anonymize_i420_regions` does the same to a video frame kept in planar
YUV 4:2:0 (:mod:`facelens.io.yuv`): each region, grown to even pixel bounds
(at most one pixel per side, as chroma comes in 2x2 blocks), is converted to
RGB, hidden by :func:`anonymize_regions` and converted back; the rest of the
frame is not touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

from facelens.io.yuv import (
    YuvArray,
    i420_patch,
    i420_size,
    i420_to_rgb,
    put_i420_patch,
    rgb_to_i420,
)
from facelens.types import Box, ImageArray

__all__ = [
    "METHODS",
    "NOISE_CELLS",
    "NOISE_LEVEL",
    "SHIPPED",
    "Method",
    "Strength",
    "anonymize_i420_regions",
    "anonymize_regions",
    "given_grain",
]

Method = Literal["blur", "pixelate", "box", "ellipse"]
METHODS: tuple[str, ...] = get_args(Method)

BLUR_SIGMA_FRACTION = 1 / 6
"""Gaussian sigma as a fraction of the region's longer side."""
BLUR_SIGMA_SHRUNK = 3.0
"""Sigma, in pixels, at which a region is blurred: larger regions are shrunk to it first."""
PIXELATE_BLOCKS = 8
"""Blocks along the region's longer side."""
ELLIPSE_SCALE = 1.3
"""The ellipse's axes as a multiple of the region's width and height (1.3: the ellipse
through the region's corners would be 1.41; measured: the inscribed one, 1.0, let SFace
match 1-2% of faces to their original, 1.3 none; docs/benchmarks.md)."""
BLUR_SOLID_BELOW = 48
"""Faces smaller than this (px, longer side of the face box) are filled solid, not blurred
(measured: a blurred 32 px LFW face matched its original for SFace, 1 in 100)."""
PIXELATE_SOLID_BELOW = 64
"""Faces smaller than this (px) are filled solid, not pixelated."""
REGION_TO_FACE = 1.6
"""A region's longer side over its face box's (the margins of :mod:`facelens.privacy.regions`)."""
NOISE_LEVEL = 120.0
"""Standard deviation, in levels of 0-255, of the grain added to blurred and pixelated regions
(at its cells' centres; interpolated between them, about 2/3 of it; measured against 20, 30,
45, 80 and 160: docs/benchmarks.md#anonymization-privacy)."""
BLUR_NOISE_LEVEL = 60.0
"""Grain of a blurred region, in the same units (pixelate keeps :data:`NOISE_LEVEL`). At 120
a blurred head plus its grain looked like a face to CenterFace, the privacy check's
independent detector (score 0.50-0.61): on a synthetic moving face, for 7 of 30 grain fields;
at 60 for 2 of 30 (fewer, not none); without grain or after pixelate for none
(``benchmarks/blur_grain_detector.py``, docs/benchmarks.md#anonymization-blur-grain). The
recognizers are held off by verified hiding (:mod:`facelens.privacy.verify`), whose stronger
blur rungs use :data:`NOISE_LEVEL`."""
NOISE_CELLS = 48
"""Grain cells along the region's longer side (the grain scales with the face)."""
FILL_COLOUR = (0, 0, 0)
"""RGB colour of ``box`` and ``ellipse``."""


@dataclass(frozen=True)
class Strength:
    """How hard each method hides a region, from the region's size.

    ``blur``: gaussian sigma as a fraction of the region's longer side; ``pixelate``:
    blocks along the longer side; ``ellipse``: the ellipse's axes as a multiple of the
    region's sides (1 is the inscribed ellipse; more covers the corners, the part outside
    the region is not drawn). ``noise``: standard deviation (levels of 0-255) of the grain
    added after pixelate (0: none), ``blur_noise`` the same after blur; ``noise_cells``: its cells along the region's
    longer side; ``grain``: which of the process's grain fields (0: the first; each is drawn
    from the OS's entropy when first used); ``fill``: the RGB colour of solid fills (box,
    ellipse, and faces too small to blur or pixelate). ``blur_solid_below`` /
    ``pixelate_solid_below``: faces
    smaller than this many pixels (the face box's longer side, estimated from the region
    as its longer side / 1.6) are filled solid instead, as a blur or a mosaic of a face that
    small still lets a recognizer match it to its original (docs/benchmarks.md).
    """

    blur: float = BLUR_SIGMA_FRACTION
    pixelate: int = PIXELATE_BLOCKS
    ellipse: float = ELLIPSE_SCALE
    noise: float = NOISE_LEVEL
    blur_noise: float = BLUR_NOISE_LEVEL
    noise_cells: int = NOISE_CELLS
    grain: int = 0
    fill: tuple[int, int, int] = FILL_COLOUR
    blur_solid_below: int = BLUR_SOLID_BELOW
    pixelate_solid_below: int = PIXELATE_SOLID_BELOW

    def solid(self, method: str, region: tuple[int, int]) -> bool:
        """Whether a ``(width, height)`` px region is filled solid rather than by ``method``."""
        face = max(region) / REGION_TO_FACE
        if method == "blur":
            return face < self.blur_solid_below
        if method == "pixelate":
            return face < self.pixelate_solid_below
        return False


SHIPPED = Strength()
"""The strength every method uses (measured: docs/benchmarks.md#anonymization-privacy)."""


def anonymize_regions(
    image: ImageArray, regions: Iterable[Box], method: Method, strength: Strength = SHIPPED
) -> None:
    """Hide every region of ``image`` (RGB uint8, changed in place) with ``method``."""
    height, width = image.shape[:2]
    for box in regions:
        x0, y0 = max(0, int(np.floor(box.x))), max(0, int(np.floor(box.y)))
        x1 = min(width, int(np.ceil(box.x + box.width)))
        y1 = min(height, int(np.ceil(box.y + box.height)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        patch = image[y0:y1, x0:x1]
        if strength.solid(method, (x1 - x0, y1 - y0)):
            patch[:] = strength.fill
        elif method == "blur":
            patch[:] = _grained(_blurred(patch, strength.blur), strength, strength.blur_noise)
        elif method == "pixelate":
            patch[:] = _grained(_pixelated(patch, strength.pixelate), strength, strength.noise)
        elif method == "box":
            patch[:] = strength.fill
        elif method == "ellipse":
            _fill_ellipse(patch, strength.ellipse, strength.fill)
        else:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def anonymize_i420_regions(
    yuv: YuvArray, regions: Iterable[Box], method: Method, strength: Strength = SHIPPED
) -> None:
    """Hide every region of an I420 frame (changed in place) with ``method``."""
    width, height = i420_size(yuv)
    for box in regions:
        x0, y0 = max(0, int(np.floor(box.x))) // 2 * 2, max(0, int(np.floor(box.y))) // 2 * 2
        x1 = min(width, int(np.ceil(box.x + box.width)) + 1) // 2 * 2
        y1 = min(height, int(np.ceil(box.y + box.height)) + 1) // 2 * 2
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        rgb = i420_to_rgb(i420_patch(yuv, x0, y0, x1, y1))
        whole = Box(0.0, 0.0, float(x1 - x0), float(y1 - y0))
        anonymize_regions(rgb, [whole], method, strength)
        put_i420_patch(yuv, rgb_to_i420(rgb), x0, y0)


def _blurred(patch: np.ndarray, fraction: float = BLUR_SIGMA_FRACTION) -> np.ndarray:
    height, width = patch.shape[:2]
    sigma = fraction * max(height, width)
    # Shrink until sigma is BLUR_SIGMA_SHRUNK px (keeping at least 4 px a side): a gaussian
    # this wide has nothing left at the shrunk sampling step, so the result is the same,
    # at a cost that no longer grows with the region (a 483 x 720 px region: 0.9 ms, not 13 ms;
    # benchmarks/blur_cost.py).
    shrink = max(1, min(int(sigma / BLUR_SIGMA_SHRUNK), min(height, width) // 4))
    small = cv2.resize(
        patch,
        (max(1, round(width / shrink)), max(1, round(height / shrink))),
        interpolation=cv2.INTER_AREA,
    )
    small_sigma = sigma * small.shape[1] / width
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=small_sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


def _grained(patch: np.ndarray, strength: Strength, level: float) -> np.ndarray:
    """``patch`` plus the process's grain field ``strength.grain`` at ``level`` (standard
    deviation, levels of 0-255), stretched to the patch (cells scale with its size)."""
    if level <= 0:
        return patch
    height, width = patch.shape[:2]
    longest = max(height, width)
    cells = (
        max(1, round(strength.noise_cells * width / longest)),
        max(1, round(strength.noise_cells * height / longest)),
    )
    field = _unit_cells(strength.grain, cells) * np.float32(level)
    # Minus half a level: OpenCV's saturating add rounds where clip-and-truncate floored (the
    # same picture, a single pass over the patch: 1 ms, not 2.6, for a 600 x 760 px region).
    noise = cv2.resize(field - np.float32(0.5), (width, height), interpolation=cv2.INTER_LINEAR)
    grained: np.ndarray = cv2.add(patch, noise, dtype=cv2.CV_8U)
    return grained


_GRAIN: list[np.ndarray] = []
_CELLS: dict[tuple[int, tuple[int, int]], np.ndarray] = {}


def _unit_cells(index: int, cells: tuple[int, int]) -> np.ndarray:
    """Grain field ``index`` shrunk (area averaging) to ``cells`` (width, height) and scaled to
    unit standard deviation; kept per shape (a crowd's faces share a few dozen), read only."""
    key = (index, cells)
    found = _CELLS.get(key)
    if found is None:
        field = np.asarray(cv2.resize(_grain_field(index), cells, interpolation=cv2.INTER_AREA))
        found = _CELLS[key] = field / np.float32(max(float(field.std()), 1e-6))
    return found


def _grain_field(index: int = 0) -> np.ndarray:
    """The process's grain field ``index``: unit gaussian noise, 256 x 256 x 3 float32, drawn
    once from the OS's entropy (never seeded, so it cannot be reproduced and subtracted);
    read only."""
    while len(_GRAIN) <= index:
        _GRAIN.append(np.random.default_rng().standard_normal((256, 256, 3)).astype(np.float32))
    return _GRAIN[index]


@contextmanager
def given_grain(field: np.ndarray) -> Iterator[None]:
    """Within the block, blur and pixelate add ``field`` (unit gaussian noise, 256 x 256 x 3
    float32) as their grain instead of the process's own.

    For measurements only (benchmarks/blur_grain_detector.py and a test count what a
    detector finds under given grains); facelens itself never calls it. Not thread-safe.
    """
    saved = list(_GRAIN)
    _GRAIN[:] = [field]
    _CELLS.clear()
    try:
        yield
    finally:
        _GRAIN[:] = saved
        _CELLS.clear()


def _pixelated(patch: np.ndarray, blocks: int = PIXELATE_BLOCKS) -> np.ndarray:
    height, width = patch.shape[:2]
    block = max(2.0, max(height, width) / blocks)
    cols, rows = max(1, round(width / block)), max(1, round(height / block))
    small = cv2.resize(patch, (cols, rows), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def _fill_ellipse(
    patch: np.ndarray, scale: float = 1.0, colour: tuple[int, int, int] = FILL_COLOUR
) -> None:
    height, width = patch.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    axes = (width * scale, height * scale)
    cv2.ellipse(mask, (((width - 1) / 2, (height - 1) / 2), axes, 0.0), 255, -1)
    patch[mask > 0] = colour
