"""Which face of a photo to enroll: the only usable one, the largest, or the one at a point.

A photo to enroll must say whose face it holds. By default it must hold exactly
one usable face (a group photo is refused, so nobody is enrolled under another's
name by accident). A caller who knows better picks the face:

* ``largest``: the largest usable face (portraits with a small face in the
  background);
* a point ``(x, y)``: the face whose box holds that point (the nearest box
  centre when boxes overlap), in the photo's own pixels after its EXIF
  orientation, x to the right and y down from the top-left corner; what a
  click on the photo gives.

:meth:`FaceChoice.parse` reads ``only``, ``largest`` or ``X,Y`` (the CLI's
``--face`` and the service's ``face`` field); :func:`choose_face` applies it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from facelens.errors import (
    FaceSelectionError,
    InputError,
    LowQualityFaceError,
    MultipleFacesError,
    NoFaceError,
)
from facelens.types import Face

__all__ = ["FACE_CHOICE_PATTERN", "ONLY_FACE", "FaceChoice", "choose_face"]

FACE_CHOICE_PATTERN = r"^(only|largest|\d{1,6}(\.\d{1,3})?,\d{1,6}(\.\d{1,3})?)$"
"""What :meth:`FaceChoice.parse` accepts: ``only``, ``largest`` or ``X,Y`` in pixels."""


@dataclass(frozen=True)
class FaceChoice:
    """How to pick the face of a photo (see the module docstring).

    ``point`` is ``(x, y)`` in the photo's own pixels (origin top-left, y down);
    with ``largest`` false and no point, the photo must hold exactly one usable face.
    """

    largest: bool = False
    point: tuple[float, float] | None = None

    @classmethod
    def parse(cls, text: str) -> FaceChoice:
        """``only``, ``largest`` or ``X,Y`` (non-negative pixels); :class:`InputError` otherwise."""
        value = text.strip().lower()
        if not re.fullmatch(FACE_CHOICE_PATTERN, value):
            raise InputError(
                f"{text!r} is not a face choice: give 'only', 'largest' or a point "
                "'X,Y' in the photo's pixels (e.g. 240,130)"
            )
        if value == "only":
            return cls()
        if value == "largest":
            return cls(largest=True)
        x, y = (float(part) for part in value.split(","))
        return cls(point=(x, y))

    def describe(self) -> str:
        """The choice in words: "the only face", "the largest face", "the face at (240, 130)"."""
        if self.point is not None:
            return f"the face at ({_px(self.point[0])}, {_px(self.point[1])})"
        return "the largest face" if self.largest else "the only face"


ONLY_FACE = FaceChoice()
"""The default choice: the photo's one usable face (several are refused)."""


def choose_face(faces: Sequence[Face], choice: FaceChoice = ONLY_FACE) -> Face | FaceSelectionError:
    """The face ``choice`` picks among ``faces``, or why there is none.

    The error says what was found, so the caller can choose again: the number of
    usable faces, where the faces are when a point missed them, and why a picked
    face is not usable.
    """
    if not faces:
        return NoFaceError("no face found")
    if choice.point is not None:
        return _face_at(faces, choice.point)
    usable = [face for face in faces if face.quality.usable]
    if not usable:
        best = max(faces, key=lambda face: face.quality.value)
        return LowQualityFaceError("no usable face: " + "; ".join(best.quality.reasons))
    if choice.largest:
        return max(usable, key=lambda face: face.box.area)
    if len(usable) > 1:
        return MultipleFacesError(
            f"{len(usable)} faces found: pick one (the largest, or the one at a point X,Y "
            "of the photo), or use a photo of this person alone"
        )
    return usable[0]


def _face_at(faces: Sequence[Face], point: tuple[float, float]) -> Face | FaceSelectionError:
    """The face whose box holds ``point`` (nearest centre first), if usable."""
    x, y = point
    holding = [
        face
        for face in faces
        if face.box.x <= x <= face.box.x + face.box.width
        and face.box.y <= y <= face.box.y + face.box.height
    ]
    if not holding:
        centres = ", ".join(
            f"({_px(face.box.center[0])}, {_px(face.box.center[1])})" for face in faces
        )
        return NoFaceError(
            f"no face at ({_px(x)}, {_px(y)}); the faces found are centred at {centres}"
        )
    face = min(holding, key=lambda f: math.dist(f.box.center, point))
    if not face.quality.usable:
        return LowQualityFaceError(
            f"the face at ({_px(x)}, {_px(y)}) is not usable: " + "; ".join(face.quality.reasons)
        )
    return face


def _px(value: float) -> str:
    """A pixel coordinate as written in messages: whole pixels."""
    return str(round(value))
