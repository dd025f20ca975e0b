"""dlib's 5-point face shape predictor and face chips, run in numpy without dlib.

dlib's face descriptor is computed on a 150x150 chip cut by dlib's own
pipeline: face box -> ``shape_predictor_5_face_landmarks.dat`` (a cascade of
ensembles of regression trees, Kazemi & Sullivan 2014) -> ``get_face_chip_details``
-> ``extract_image_chip``. This module does the same steps, following dlib's
sources (``dlib/image_processing/shape_predictor.h``,
``dlib/image_transforms/interpolation.h``, ``image_pyramid.h``,
``geometry/point_transforms.h``, ``geometry/drectangle.h``):

* the predictor file (``shape_predictor`` version 1): ``initial_shape``, then per
  cascade its forest of ``regression_tree`` (splits ``idx1, idx2, thresh``;
  ``leaf_values``), then per cascade the feature pixels' ``anchor_idx`` and ``deltas``;
* shapes live in box-normalised units: (0, 0) is the box's top-left corner,
  (1, 1) its bottom-right one (dlib's ``unnormalizing_tform``); features are
  grey intensities ``(R + G + B) // 3`` read at the nearest pixel, 0 outside;
  the predicted points are rounded to whole pixels, as dlib's ``point`` is;
* the chip: the similarity from 5 fixed template points (padding 0.25) to the
  predicted points gives a rotated rectangle; when it is more than twice the
  chip's size, dlib first halves the face's region with its 5x5 pyramid
  (``pyramid_down<2>``), then samples bilinearly (truncating to uint8, black
  outside the image).

Coordinates are pixels, x before y; images are RGB uint8 ``(H, W, 3)``.
Equality with real dlib on real faces is checked by ``tests/test_dlib_shape.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facelens.models.dlib_format import DlibFormatError, Reader
from facelens.types import FloatArray, ImageArray

__all__ = [
    "Rect",
    "ShapePredictor",
    "extract_chip",
    "face_chip",
    "face_chip_details",
    "predict_shape",
    "pyramid_down",
    "read_shape_predictor",
]

CHIP_PADDING = 0.25

CHIP_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
"""dlib's mean positions of its 5 points in an unpadded chip (``get_face_chip_details``), x, y.

dlib's point order: image-right eye outer corner, its inner corner, image-left
eye outer corner, its inner corner, bottom of the nose.
"""

Rect = tuple[int, int, int, int]
"""A dlib ``rectangle``: left, top, right, bottom in whole pixels, right and bottom inclusive."""


@dataclass(frozen=True)
class ShapePredictor:
    """A parsed ``shape_predictor``; every cascade has the same number of trees and features.

    ``initial_shape`` is ``(P, 2)`` float32 (box-normalised x, y); per cascade ``c``
    and tree ``t``: ``idx1[c, t]``, ``idx2[c, t]``, ``thresh[c, t]`` are the splits
    (breadth-first, ``S`` per tree), ``leaves[c, t]`` is ``(S + 1, P, 2)`` float32;
    ``anchors[c]`` (``F`` ints) and ``deltas[c]`` (``(F, 2)`` float32) place the
    cascade's feature pixels relative to the initial shape's points.
    """

    initial_shape: np.ndarray
    idx1: np.ndarray
    idx2: np.ndarray
    thresh: np.ndarray
    leaves: np.ndarray
    anchors: np.ndarray
    deltas: np.ndarray

    @property
    def parts(self) -> int:
        return int(self.initial_shape.shape[0])


# --- the file -------------------------------------------------------------------------------


def _float_vector(reader: Reader) -> np.ndarray:
    """A ``matrix<float,0,1>``: sizes written negated (-rows, -1), then the values."""
    rows, columns = -reader.integer(), -reader.integer()
    if columns != 1 or rows < 0:
        raise reader.fail(f"expected a column vector, found {rows}x{columns}")
    return np.array([reader.real() for _ in range(rows)], dtype=np.float32)


def read_shape_predictor(data: bytes) -> ShapePredictor:
    """Parse a ``shape_predictor`` file (dlib ``serialize``, version 1)."""
    reader = Reader(data)
    if reader.integer() != 1:
        raise reader.fail("not a shape_predictor (version 1)")
    initial = _float_vector(reader)
    if initial.size % 2:
        raise reader.fail("initial shape has an odd number of values")
    cascades: list[
        tuple[list[list[int]], list[list[int]], list[list[float]], list[np.ndarray]]
    ] = []
    for _ in range(reader.integer()):
        idx1: list[list[int]] = []
        idx2: list[list[int]] = []
        thresh: list[list[float]] = []
        leaves: list[np.ndarray] = []
        for _ in range(reader.integer()):
            splits = [
                (reader.integer(), reader.integer(), reader.real()) for _ in range(reader.integer())
            ]
            values = [_float_vector(reader) for _ in range(reader.integer())]
            if len(values) != len(splits) + 1:
                raise reader.fail("a tree needs one more leaf than splits")
            idx1.append([s[0] for s in splits])
            idx2.append([s[1] for s in splits])
            thresh.append([s[2] for s in splits])
            leaves.append(np.stack(values))
        cascades.append((idx1, idx2, thresh, leaves))
    anchors = [[reader.integer() for _ in range(reader.integer())] for _ in range(reader.integer())]
    deltas = [
        [(reader.real(), reader.real()) for _ in range(reader.integer())]
        for _ in range(reader.integer())
    ]
    if reader.offset != len(data):
        raise reader.fail(f"{len(data) - reader.offset} bytes left after the shape predictor")
    try:
        predictor = ShapePredictor(
            initial_shape=initial.reshape(-1, 2),
            idx1=np.array([c[0] for c in cascades], dtype=np.int64),
            idx2=np.array([c[1] for c in cascades], dtype=np.int64),
            thresh=np.array([c[2] for c in cascades], dtype=np.float32),
            leaves=np.array([c[3] for c in cascades], dtype=np.float32),
            anchors=np.array(anchors, dtype=np.int64),
            deltas=np.array(deltas, dtype=np.float32),
        )
    except ValueError as error:  # ragged: cascades or trees of different sizes
        raise DlibFormatError(f"shape predictor of an unsupported layout: {error}") from error
    _check(predictor)
    return predictor


def _check(predictor: ShapePredictor) -> None:
    cascades, trees, splits = predictor.idx1.shape
    leaves = predictor.leaves
    features = predictor.anchors.shape[1]
    if (
        leaves.shape != (cascades, trees, splits + 1, predictor.parts * 2)
        or (splits + 1) & splits
        or predictor.deltas.shape != (cascades, features, 2)
        or predictor.anchors.shape[0] != cascades
        or max(int(predictor.idx1.max()), int(predictor.idx2.max())) >= features
        or int(predictor.anchors.max()) >= predictor.parts
    ):
        raise DlibFormatError("shape predictor arrays do not fit together")


# --- geometry as dlib computes it -----------------------------------------------------------


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's ``find_similarity_transform`` (Umeyama): ``(M, b)`` with target ~ M @ p + b.

    ``source`` and ``target`` are ``(N, 2)`` points, x, y; computed in float64.
    """
    src = source.astype(np.float64)
    dst = target.astype(np.float64)
    mean_from, mean_to = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mean_from, dst - mean_to
    sigma_from = float((src_c**2).sum() / len(src))
    covariance = dst_c.T @ src_c / len(src)
    u, d, vt = np.linalg.svd(covariance)
    s = np.ones(2)
    det = float(np.linalg.det(covariance))
    if det < 0 or (det == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        s[1 if d[1] < d[0] else 0] = -1
    rotation = u @ np.diag(s) @ vt
    scale = float((d * s).sum() / sigma_from) if sigma_from != 0 else 1.0
    matrix = scale * rotation
    return matrix, mean_to - matrix @ mean_from


def _round(values: np.ndarray) -> np.ndarray:
    """dlib's conversion of a real point to a ``point``: ``floor(v + 0.5)``."""
    return np.floor(values + 0.5).astype(np.int64)


def grey(image: ImageArray) -> np.ndarray:
    """dlib's ``get_pixel_intensity`` of every pixel: ``(R + G + B) // 3`` (float32)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    values: np.ndarray = (image.astype(np.uint16).sum(axis=2) // 3).astype(np.float32)
    return values


def predict_shape(predictor: ShapePredictor, image: ImageArray, rect: Rect) -> FloatArray:
    """``shape_predictor::operator()(img, rect)``: ``(P, 2)`` whole-pixel points, x, y.

    ``image`` is RGB uint8 ``(H, W, 3)`` (or grey ``(H, W)``); ``rect`` the face box.
    """
    intensity = grey(image)
    height, width = intensity.shape
    left, top, right, bottom = rect
    origin = np.array([left, top], dtype=np.float64)
    span = np.array([right - left, bottom - top], dtype=np.float64)
    initial = predictor.initial_shape
    current = initial.copy()
    trees = np.arange(predictor.idx1.shape[1])
    splits = predictor.idx1.shape[2]
    for cascade in range(predictor.idx1.shape[0]):
        matrix, _ = similarity(initial, current)
        tform = matrix.astype(np.float32)
        deltas = predictor.deltas[cascade]
        # float32 as in dlib: tform * delta + location(current_shape, anchor)
        shifted = (deltas @ tform.T).astype(np.float32) + current[predictor.anchors[cascade]]
        pixels = _round(shifted.astype(np.float64) * span + origin)
        inside = (
            (pixels[:, 0] >= 0)
            & (pixels[:, 0] < width)
            & (pixels[:, 1] >= 0)
            & (pixels[:, 1] < height)
        )
        values = np.zeros(len(pixels), dtype=np.float32)
        values[inside] = intensity[pixels[inside, 1], pixels[inside, 0]]
        node = np.zeros(len(trees), dtype=np.int64)
        while node[0] < splits:
            first = values[predictor.idx1[cascade, trees, node]]
            second = values[predictor.idx2[cascade, trees, node]]
            left_child = first - second > predictor.thresh[cascade, trees, node]
            node = np.where(left_child, 2 * node + 1, 2 * node + 2)
        steps = predictor.leaves[cascade, trees, node - splits]
        # dlib adds the trees' outputs one after another in float32
        total = np.cumsum(np.concatenate([current.reshape(1, -1), steps]), axis=0, dtype=np.float32)
        current = total[-1].reshape(-1, 2)
    points = _round(current.astype(np.float64) * span + origin)
    return points.astype(np.float32)


# --- face chips -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipDetails:
    """dlib's ``chip_details``: a rotated rectangle of the image (``drectangle``) and its size."""

    left: float
    top: float
    right: float
    bottom: float
    angle: float  # radians
    size: int  # rows = columns

    @property
    def area(self) -> float:
        return _area(self.left, self.top, self.right, self.bottom)


def _area(left: float, top: float, right: float, bottom: float) -> float:
    """``drectangle::area``: (r - l + 1) * (b - t + 1), 0 when empty."""
    if top > bottom or left > right:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def face_chip_details(
    points: np.ndarray, size: int = 150, padding: float = CHIP_PADDING
) -> ChipDetails:
    """``get_face_chip_details`` for dlib's 5 points (``(5, 2)`` pixels, dlib's order)."""
    template = (padding + CHIP_TEMPLATE) / (2 * padding + 1) * size
    matrix, offset = similarity(template, points)
    p = matrix @ np.array([1.0, 0.0])
    angle = math.atan2(p[1], p[0])
    scale = math.hypot(p[0], p[1])
    centre = matrix @ np.array([size / 2.0, size / 2.0]) + offset
    half = (size * scale - 1) / 2
    return ChipDetails(
        centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half, angle, size
    )


def _point_down(x: float, y: float) -> tuple[float, float]:
    """``pyramid_down<2>::point_down``."""
    return x / 2.0 - 1.25, y / 2.0 - 0.75


def _rect_down(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    left, top = _point_down(rect[0], rect[1])
    right, bottom = _point_down(rect[2], rect[3])
    return left, top, right, bottom


def pyramid_down(image: ImageArray) -> ImageArray:
    """dlib's ``pyramid_down<2>`` of an RGB uint8 image: 5x5 [1 4 6 4 1]^2 / 256, every 2nd pixel.

    The output is ``((H - 3) // 2, (W - 3) // 2)``; sums are integers and the
    division truncates, as in dlib.
    """
    rows, columns = image.shape[:2]
    if rows <= 8 or columns <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    source = image.astype(np.uint32)
    out_c = (columns - 3) // 2
    c = 2 * np.arange(out_c)
    horizontal = (
        source[:, c]
        + 4 * source[:, c + 1]
        + 6 * source[:, c + 2]
        + 4 * source[:, c + 3]
        + source[:, c + 4]
    )
    out_r = (rows - 3) // 2
    r = 2 * np.arange(out_r)
    vertical = (
        horizontal[r]
        + 4 * horizontal[r + 1]
        + 6 * horizontal[r + 2]
        + 4 * horizontal[r + 3]
        + horizontal[r + 4]
    )
    halved: ImageArray = (vertical // 256).astype(np.uint8)
    return halved


def _rotate(centre: np.ndarray, point: np.ndarray, angle: float) -> np.ndarray:
    """``rotate_point``: ``point`` turned by ``angle`` radians around ``centre``."""
    cos, sin = math.cos(angle), math.sin(angle)
    x, y = point - centre
    turned: np.ndarray = np.array([cos * x - sin * y, sin * x + cos * y]) + centre
    return turned


def _corners(rect: tuple[float, float, float, float], angle: float) -> list[np.ndarray]:
    """The rectangle's tl, tr, bl, br corners turned by ``angle`` around its centre."""
    left, top, right, bottom = rect
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    return [
        _rotate(centre, np.array(corner, dtype=np.float64), angle)
        for corner in ((left, top), (right, top), (left, bottom), (right, bottom))
    ]


def extract_chip(image: ImageArray, details: ChipDetails) -> ImageArray:
    """``extract_image_chip`` (bilinear): the ``(size, size, 3)`` RGB uint8 chip."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    rows, columns = image.shape[:2]
    size = details.size
    rect = (details.left, details.top, details.right, details.bottom)
    # how deep the pyramid goes, and the region it is built from (with a border)
    depth, grow = 0, 2.0
    down = _rect_down(rect)
    while _area(*down) > size * size:
        down = _rect_down(down)
        depth += 1
        grow = grow * 2 + 2
    corners = np.array(_corners(rect, details.angle))
    region = (
        max(corners[:, 0].min() - grow, 0.0),
        max(corners[:, 1].min() - grow, 0.0),
        min(corners[:, 0].max() + grow, columns - 1.0),
        min(corners[:, 1].max() + grow, rows - 1.0),
    )
    box = [math.floor(v + 0.5) for v in region]  # drectangle -> rectangle
    x0, y0 = max(box[0], 0), max(box[1], 0)  # sub_image clips to the image
    x1, y1 = min(box[2], columns - 1), min(box[3], rows - 1)
    source = image[y0 : y1 + 1, x0 : x1 + 1] if x1 >= x0 and y1 >= y0 else image[:0, :0]
    local = (rect[0] - box[0], rect[1] - box[1], rect[2] - box[0], rect[3] - box[1])
    level = -1
    while _area(*_rect_down(local)) > size * size:
        level += 1
        local = _rect_down(local)
    for _ in range(level + 1):
        source = pyramid_down(source)
    tl, tr, bl, _ = _corners(local, details.angle)
    # the affine map from chip pixels (c, r) to source pixels: tl + c*(tr-tl)/(n-1) + r*(bl-tl)/(n-1)
    step_x = (tr - tl) / (size - 1)
    step_y = (bl - tl) / (size - 1)
    grid = np.arange(size, dtype=np.float64)
    xs = tl[0] + grid[None, :] * step_x[0] + grid[:, None] * step_y[0]
    ys = tl[1] + grid[None, :] * step_x[1] + grid[:, None] * step_y[1]
    return _bilinear(source, xs, ys)


def _bilinear(image: ImageArray, xs: np.ndarray, ys: np.ndarray) -> ImageArray:
    """``interpolate_bilinear`` at each (x, y); 0 where the 2x2 neighbourhood leaves the image."""
    rows, columns = image.shape[:2]
    left = np.floor(xs).astype(np.int64)
    top = np.floor(ys).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < columns) & (top + 1 < rows)
    out = np.zeros((*xs.shape, 3), dtype=np.uint8)
    if not inside.any():
        return out
    left, top = left[inside], top[inside]
    fx = (xs[inside] - left)[:, None]
    fy = (ys[inside] - top)[:, None]
    pixels = image.astype(np.float64)
    tl, tr = pixels[top, left], pixels[top, left + 1]
    bl, br = pixels[top + 1, left], pixels[top + 1, left + 1]
    value = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    out[inside] = np.clip(value, 0, 255).astype(np.uint8)  # dlib truncates
    return out


def face_chip(image: ImageArray, points: np.ndarray, size: int = 150) -> ImageArray:
    """dlib's ``get_face_chip(image, shape5, size, padding=0.25)``: RGB uint8 ``(size, size, 3)``."""
    return extract_chip(image, face_chip_details(points, size))
