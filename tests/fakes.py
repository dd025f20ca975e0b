"""Stand-ins for the two model protocols, and the synthetic photos they understand.

They let the logic around the models (enroll, identify, verify, erase,
duplicate and look-alike refusal, batches with a bad item) run anywhere in
milliseconds, without ``../shared/data`` or a network; what only real faces
show (accuracy, calibration on people, alignment of real landmarks) stays in
the real-data tests.

A synthetic photo is a grey background (:data:`BACKGROUND`) with square face
tiles on it (:func:`photo`). A person's tile is a :data:`GRID` x :data:`GRID`
pattern of colours fixed by the person's number; each shot moves those colours
a little and adds fine noise (so it is sharp), both fixed by the shot's number.
The same person and shot is the same image, pixel for pixel.

* :class:`TileDetector` (a :class:`~facelens.models.base.Detector`) finds the
  tiles and puts the 5 landmarks where the embedder's template has them, so
  alignment cuts exactly the tile.
* :class:`PixelEmbedder` (an :class:`~facelens.models.base.Embedder`) makes a
  template from the crop's pixels: its mean colour in each grid cell, centred
  and L2-normalised. Two shots of a person score about 0.99 (below the
  duplicate limit of 0.9999); two people score about 0 (sd 0.1).

:func:`fitted_calibration` fits a deployment calibration
(:mod:`facelens.match.deployment`) on many synthetic people, so decisions with
the fakes use the same code as with real models.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import cv2
import numpy as np

from facelens.match.deployment import all_pairs, fit_deployment
from facelens.models.user import ARCFACE_112
from facelens.pipeline.faces import FacePipeline
from facelens.types import Box, Detection, FloatArray, ImageArray

BACKGROUND = 128
"""Grey level of a synthetic photo's background (all three channels)."""
TILE = 128
"""Side of a face tile, in pixels (about 40 px between the eyes: a usable size)."""
GRID = 6
"""Cells per side of a person's colour pattern (the template has GRID * GRID * 3 values)."""
GAP = 32
"""Pixels of background around and between tiles."""
CROP = 112
"""Side of the aligned crop, in pixels."""
REFERENCE_LANDMARKS = np.array(ARCFACE_112, dtype=np.float32)
"""Where the 5 landmarks go in the 112 x 112 crop (the ArcFace template)."""


def face_tile(person: int, shot: int = 0) -> ImageArray:
    """``person``'s face in one ``shot``: a ``(TILE, TILE, 3)`` uint8 RGB tile."""
    pattern = np.random.default_rng(person)
    # Each channel far from the background (<= 70 or >= 186), so the detector sees the tile.
    dark = pattern.integers(0, 71, (GRID, GRID, 3))
    light = pattern.integers(186, 256, (GRID, GRID, 3))
    colours = np.where(pattern.random((GRID, GRID, 3)) < 0.5, dark, light)
    variation = np.random.default_rng([person, shot])
    colours = colours + variation.integers(-12, 13, (GRID, GRID, 3))  # the shot's light
    tile = cv2.resize(colours.astype(np.float32), (TILE, TILE), interpolation=cv2.INTER_NEAREST)
    tile = tile + variation.integers(-15, 16, (TILE, TILE, 3))  # fine noise: a sharp face
    pixels: ImageArray = np.clip(tile, 0, 255).astype(np.uint8)
    return pixels


def photo(*faces: tuple[int, int]) -> ImageArray:
    """A photo of the faces ``(person, shot)`` side by side; no faces: an empty grey photo."""
    width = GAP + max(1, len(faces)) * (TILE + GAP)
    image = np.full((TILE + 2 * GAP, width, 3), BACKGROUND, dtype=np.uint8)
    for index, (person, shot) in enumerate(faces):
        left = GAP + index * (TILE + GAP)
        image[GAP : GAP + TILE, left : left + TILE] = face_tile(person, shot)
    return image


def png(image: ImageArray) -> bytes:
    """The photo encoded as PNG (for the paths that take files or bytes)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


class TileDetector:
    """A :class:`~facelens.models.base.Detector` that finds the face tiles of :func:`photo`."""

    model_id = "fake-tile-detector"

    def __init__(self, min_side: int = 16, score: float = 0.99) -> None:
        self.min_side = min_side  # smaller specks (in the searched image's pixels) are no face
        self.score = score

    def detect(self, image: ImageArray) -> list[Detection]:
        """Each region away from the background grey, its landmarks on the crop template."""
        near = (BACKGROUND - 24,) * 3, (BACKGROUND + 24,) * 3  # every channel within 24 levels
        far = cv2.bitwise_not(cv2.inRange(image, *near))
        count, _, stats, _ = cv2.connectedComponentsWithStats(far, connectivity=8)
        found = []
        for x, y, width, height, _ in stats[1:count]:
            if min(width, height) < self.min_side:
                continue
            scale = np.array([width / CROP, height / CROP], dtype=np.float32)
            landmarks = REFERENCE_LANDMARKS * scale + np.array([x, y], dtype=np.float32)
            box = Box(float(x), float(y), float(width), float(height))
            found.append(Detection(box, landmarks.astype(np.float32), self.score))
        return found


class PixelEmbedder:
    """An :class:`~facelens.models.base.Embedder` whose template is the crop's mean colour
    per grid cell, centred and L2-normalised (deterministic: same pixels, same template)."""

    input_size = (CROP, CROP)
    reference_landmarks: FloatArray = REFERENCE_LANDMARKS
    dimension = GRID * GRID * 3

    def __init__(self, model_id: str = "fake-pixel-embedder") -> None:
        self.model_id = model_id
        self.calls = 0  # embed() calls, to show batching

    def embed(self, crops: ImageArray) -> FloatArray:
        """``(N, 112, 112, 3)`` uint8 RGB crops -> ``(N, GRID * GRID * 3)`` float32, unit norm."""
        self.calls += 1
        rows = [
            cv2.resize(crop, (GRID, GRID), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
            for crop in crops
        ]
        vectors = np.array(rows, dtype=np.float32).reshape(len(crops), self.dimension)
        vectors -= vectors.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        templates: FloatArray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return templates


CALIBRATION_PEOPLE = range(1000, 1060)
"""The synthetic people the calibration is fitted on (tests use other numbers)."""


@cache
def fitted_calibration(model_id: str = "fake-pixel-embedder") -> dict[str, Any]:
    """A deployment calibration record of :class:`PixelEmbedder` (60 people x 3 shots, as
    ``facelens calibrate`` fits one), to store in a test gallery with ``store_calibration``."""
    pipeline = FacePipeline(TileDetector(), PixelEmbedder(model_id))
    vectors, people = [], []
    for person in CALIBRATION_PEOPLE:
        for shot in range(3):
            (face,) = pipeline.detect(photo((person, shot)))
            assert face.template is not None
            vectors.append(face.template.vector)
            people.append(person)
    pairs = all_pairs(np.array(vectors), np.array(people))
    fit = fit_deployment(model_id, pairs, sources=["tests/fakes.py"], images=len(vectors))
    return fit.record
