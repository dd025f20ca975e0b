"""The project's own types, used at every stage boundary.

Conventions (they hold everywhere in facelens):

* Images are ``numpy.ndarray`` of shape ``(height, width, 3)``, dtype
  ``uint8``, colour order **RGB**. Conversion happens once, in :mod:`facelens.io`.
* Coordinates are pixels of the original (full-resolution, EXIF-rotated)
  image, origin top-left, **x before y**. Boxes are ``(x, y, width, height)``.
* The 5 landmarks come in this order, as seen in the image (not from the
  subject's point of view): left eye, right eye, nose tip, left mouth corner,
  right mouth corner. Shape ``(5, 2)``, float32, ``(x, y)`` per row.
* Templates are L2-normalised float32 vectors tagged with the id of the model
  that made them; scores are cosine similarities in ``[-1, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "USABLE_QUALITY",
    "Box",
    "Candidate",
    "Detection",
    "Face",
    "FloatArray",
    "ImageArray",
    "Match",
    "Person",
    "Quality",
    "StoredTemplate",
    "Template",
    "Verification",
]

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Box:
    """An axis-aligned face box in pixels: top-left corner ``(x, y)`` and size."""

    x: float
    y: float
    width: float
    height: float

    def as_list(self) -> list[float]:
        """``[x, y, w, h]`` rounded to 0.1 px, as written in JSON."""
        return [round(self.x, 1), round(self.y, 1), round(self.width, 1), round(self.height, 1)]

    def scaled(self, factor_x: float, factor_y: float) -> Box:
        """The same box with x coordinates multiplied by ``factor_x``, y by ``factor_y``."""
        return Box(
            self.x * factor_x, self.y * factor_y, self.width * factor_x, self.height * factor_y
        )

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y + self.height / 2)


@dataclass(frozen=True, eq=False)
class Detection:
    """What a detector returns for one face, before alignment and embedding."""

    box: Box
    landmarks: FloatArray  # (5, 2) x, y in pixels, order documented in the module docstring
    score: float  # detector confidence in [0, 1]


@dataclass(frozen=True)
class Quality:
    """How usable a face is for recognition.

    ``value`` is in ``[0, 1]`` (1 = ideal). ``reasons`` lists, in words, every
    factor that lowered it. The factors are kept for inspection:
    ``face_size`` is the inter-ocular distance in pixels of the original image,
    ``sharpness`` the variance of the Laplacian of the aligned grey crop,
    ``yaw`` an estimate of head turn in degrees (0 = frontal), ``score`` the
    detector confidence.
    """

    value: float
    reasons: tuple[str, ...]
    face_size: float
    sharpness: float
    yaw: float
    score: float

    @property
    def usable(self) -> bool:
        """True when the face is good enough to enroll or to decide on."""
        return self.value >= USABLE_QUALITY

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 3),
            "reasons": list(self.reasons),
            "face_size": round(self.face_size, 1),
            "sharpness": round(self.sharpness, 1),
            "yaw": round(self.yaw, 1),
            "score": round(self.score, 3),
        }


USABLE_QUALITY = 0.3
"""Quality below which a face is not enrolled (and identification says why)."""


@dataclass(frozen=True, eq=False)
class Template:
    """An L2-normalised face template (float32) made by the model ``model_id``."""

    vector: FloatArray
    model_id: str


@dataclass(frozen=True, eq=False)
class Face:
    """One face found in an image, with everything facelens knows about it."""

    box: Box
    landmarks: FloatArray
    score: float
    quality: Quality
    template: Template | None = None
    aligned: ImageArray | None = field(default=None, repr=False)  # RGB crop fed to the embedder
    # For a fused embedder: the crops aligned for each of its parts (the first is `aligned`).
    part_crops: tuple[ImageArray, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``box`` ``[x, y, w, h]``, ``landmarks`` 5 ``[x, y]``, ``score``, ``quality``."""
        return {
            "box": self.box.as_list(),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "score": round(self.score, 4),
            "quality": self.quality.to_dict(),
        }


@dataclass(frozen=True)
class Candidate:
    """A person of the gallery and their best score against a probe face."""

    name: str
    person_id: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "person_id": self.person_id, "score": round(self.score, 4)}


@dataclass(frozen=True, eq=False)
class Match:
    """The open-set identification decision for one probe face.

    ``identity`` is the best candidate's name when ``score >= threshold``, else
    ``None`` (unknown). ``fmr`` is the false-match rate of one comparison at
    ``threshold``, measured by the model's calibration. The evidence of the
    best score itself: ``llr``, its log10 likelihood ratio (same person vs
    different people), and ``score_fmr``, the fraction of impostor comparisons
    that score this high.
    """

    face: Face
    identity: str | None
    score: float
    threshold: float
    fmr: float
    candidates: tuple[Candidate, ...]
    llr: float | None = None
    score_fmr: float | None = None
    calibration: str | None = None  # the calibration in force: "shipped:lfw" or "gallery:<id>"

    def to_dict(self) -> dict[str, Any]:
        data = self.face.to_dict()
        data.update(
            {
                "identity": self.identity,
                "score": None
                if math.isnan(self.score)
                else round(self.score, 4),  # NaN: empty gallery
                "threshold": round(self.threshold, 4),
                "fmr": self.fmr,
                "llr": _rounded(self.llr),
                "score_fmr": self.score_fmr,
                "calibration": self.calibration,
                "candidates": [c.to_dict() for c in self.candidates],
            }
        )
        return data


@dataclass(frozen=True, eq=False)
class Verification:
    """A 1:1 decision: are the main faces of two images the same person?"""

    same: bool
    score: float
    threshold: float
    fmr: float
    face_a: Face
    face_b: Face
    llr: float | None = None  # log10 likelihood ratio of the score
    score_fmr: float | None = None  # fraction of impostor comparisons that score this high
    calibration: str | None = None  # the calibration in force: "shipped:lfw" or "gallery:<id>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "same": self.same,
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "fmr": self.fmr,
            "llr": _rounded(self.llr),
            "score_fmr": self.score_fmr,
            "calibration": self.calibration,
            "face_a": self.face_a.to_dict(),
            "face_b": self.face_b.to_dict(),
        }


@dataclass(frozen=True)
class Person:
    """A known identity in the gallery."""

    id: int
    name: str
    templates: int
    created_at: str


@dataclass(frozen=True)
class StoredTemplate:
    """A template row of the gallery (its vector is not loaded here)."""

    id: int
    person_id: int
    model_id: str
    source: str
    quality: float
    created_at: str


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
