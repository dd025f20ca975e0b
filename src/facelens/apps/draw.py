"""Drawing boxes, landmarks and labels onto a copy of an image, for people to look at.

The one drawing module of facelens's applications, for photos and video alike:

* :func:`draw_faces`: faces found in a photo (box, landmarks, label), used by
  ``facelens detect|identify|analyze|demo --draw``;
* :func:`draw_boxes`: labelled boxes on a video frame, used by the annotated
  copies of :mod:`facelens.apps.video.annotate`;
* :data:`KNOWN`, :data:`UNKNOWN`, :data:`NEUTRAL`: the colours (RGB), shared
  with the video timeline chart (:mod:`facelens.apps.video.charts`).

Both draw a label as white text on a filled box of the face's colour above its
box (:func:`_label`). Coordinates are pixels of the image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facelens.types import Box, Face, ImageArray

__all__ = ["KNOWN", "UNKNOWN", "draw_boxes", "draw_faces", "save_drawing"]

KNOWN = (40, 200, 40)  # RGB
UNKNOWN = (230, 60, 40)
NEUTRAL = (40, 140, 255)


def draw_faces(
    image: ImageArray,
    faces: list[Face],
    labels: list[str] | None = None,
    colours: list[tuple[int, int, int]] | None = None,
) -> ImageArray:
    """A copy of the RGB ``image`` with each face's box, landmarks and label."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(2, round(max(image.shape[:2]) / 500))
    font_scale = max(0.5, max(image.shape[:2]) / 1500)
    for index, face in enumerate(faces):
        colour = colours[index] if colours else NEUTRAL
        x, y, w, h = (round(v) for v in face.box.as_list())
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        for px, py in face.landmarks:
            cv2.circle(canvas, (round(float(px)), round(float(py))), thickness, colour, -1)
        if labels:
            _label(
                canvas, x, y, labels[index], colour, font_scale, thickness, max(1, thickness // 2)
            )
    return canvas


def draw_boxes(
    image: ImageArray, boxes: list[Box], labels: list[str], colours: list[tuple[int, int, int]]
) -> ImageArray:
    """A copy of the RGB ``image`` with labelled boxes (pixels, ``(x, y, w, h)``)."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(2, round(max(image.shape[:2]) / 400))
    scale = max(0.45, max(image.shape[:2]) / 1400)
    for box, text, colour in zip(boxes, labels, colours, strict=True):
        x, y, w, h = (round(v) for v in (box.x, box.y, box.width, box.height))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        _label(canvas, x, y, text, colour, scale, 1, 1)
    return canvas


def _label(
    canvas: ImageArray,
    x: int,
    y: int,
    text: str,
    colour: tuple[int, int, int],
    scale: float,
    measure_thickness: int,
    text_thickness: int,
) -> None:
    """Write ``text`` in white on a filled box of ``colour`` just above the point ``(x, y)``
    (pixels), in place. ``scale`` is OpenCV's font scale; the filled box is sized for text
    of ``measure_thickness`` and the text drawn ``text_thickness`` pixels thick."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, measure_thickness)
    top = max(0, y - th - base - 4)
    cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
    cv2.putText(
        canvas,
        text,
        (x + 2, top + th + 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        text_thickness,
        cv2.LINE_AA,
    )


def save_drawing(image: ImageArray, out_dir: Path, source: str) -> Path:
    """Write an RGB drawing as ``<out_dir>/<source stem>.jpg`` (numbered if taken)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(source).stem if not source.startswith("<") else "image"
    target = out_dir / f"{stem}.jpg"
    counter = 1
    while target.exists():
        target = out_dir / f"{stem}-{counter}.jpg"
        counter += 1
    cv2.imwrite(str(target), image[:, :, ::-1])
    return target
