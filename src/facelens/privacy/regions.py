"""Where to anonymize: the face box grown to cover forehead, hair line, chin and sides.

A detector's face box (YuNet's) runs from the eyebrows to the chin and from
cheek to cheek: it leaves the forehead, the hair line, the ears and the jaw
line visible, and these are enough for a person who knows the subject.
:func:`anonymization_region` grows the box by a fixed margin, in fractions of
the box's own size:

* top: ``0.40 x height`` (forehead and hair line),
* bottom: ``0.20 x height`` (chin and jaw),
* left and right: ``0.20 x width`` each (ears and sides of the head).

So a ``w x h`` box becomes ``1.4 w x 1.6 h``. The region is clipped to the
image. All coordinates are ``(x, y)`` pixels of the image, boxes
``(x, y, width, height)`` (see :mod:`facelens.types`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from facelens.types import Box

__all__ = [
    "MARGIN_BOTTOM",
    "MARGIN_SIDE",
    "MARGIN_TOP",
    "Region",
    "RegionOrigin",
    "anonymization_region",
    "centre_inside",
    "grow_box",
]

MARGIN_TOP = 0.40
"""Growth above the face box, as a fraction of its height (forehead, hair line)."""
MARGIN_BOTTOM = 0.20
"""Growth below the face box, as a fraction of its height (chin, jaw)."""
MARGIN_SIDE = 0.20
"""Growth on each side of the face box, as a fraction of its width (ears, sides)."""

RegionOrigin = Literal["detected", "interpolated", "held"]
"""How a region was placed on a frame: on a detection, between two detections
of the same track (linear interpolation of the box), or kept in place for a
few frames after the track's last detection."""


@dataclass(frozen=True)
class Region:
    """One anonymized area of one image or frame.

    ``box`` is the grown and clipped region in pixels; ``face_box`` the face
    box it came from; ``score`` the detector confidence of that face (for an
    interpolated or held region, the lowest score of the detections it
    came from); ``track_id`` is ``None`` for still images.
    """

    box: Box
    face_box: Box
    score: float
    origin: RegionOrigin = "detected"
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.as_list(),
            "face_box": self.face_box.as_list(),
            "score": round(self.score, 3),
            "origin": self.origin,
            "track_id": self.track_id,
        }


def grow_box(face_box: Box, width: int, height: int, scale: float = 1.0) -> Box:
    """The face box grown by the documented margins (times ``scale``) and clipped to a
    ``width x height`` image."""
    side, top, bottom = MARGIN_SIDE * scale, MARGIN_TOP * scale, MARGIN_BOTTOM * scale
    x0 = face_box.x - side * face_box.width
    x1 = face_box.x + face_box.width * (1 + side)
    y0 = face_box.y - top * face_box.height
    y1 = face_box.y + face_box.height * (1 + bottom)
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(width), x1), min(float(height), y1)
    return Box(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def anonymization_region(
    face_box: Box,
    score: float,
    width: int,
    height: int,
    origin: RegionOrigin = "detected",
    track_id: int | None = None,
) -> Region:
    """The :class:`Region` that hides a face of box ``face_box`` in a ``width x height`` image."""
    return Region(grow_box(face_box, width, height), face_box, score, origin, track_id)


def interpolate_box(start: Box, end: Box, fraction: float) -> Box:
    """The box a fraction ``[0, 1]`` of the way from ``start`` to ``end`` (linear in x, y, w, h)."""
    return Box(
        start.x + (end.x - start.x) * fraction,
        start.y + (end.y - start.y) * fraction,
        start.width + (end.width - start.width) * fraction,
        start.height + (end.height - start.height) * fraction,
    )


def centre_inside(box: Box, region: Box) -> bool:
    """True when the centre of ``box`` lies inside ``region``."""
    cx, cy = box.center
    return region.x <= cx <= region.x + region.width and region.y <= cy <= region.y + region.height


def overlap_fraction(box: Box, region: Box) -> float:
    """The fraction of ``box``'s area that lies inside ``region`` (0 when ``box`` is empty)."""
    ix = max(0.0, min(box.x + box.width, region.x + region.width) - max(box.x, region.x))
    iy = max(0.0, min(box.y + box.height, region.y + region.height) - max(box.y, region.y))
    return ix * iy / box.area if box.area > 0 else 0.0
