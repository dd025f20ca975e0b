"""Drawing boxes, landmarks and labels onto a copy of an image, for people to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facelens.types import Face, ImageArray

__all__ = ["KNOWN", "UNKNOWN", "draw_faces", "save_drawing"]

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
            text = labels[index]
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
            top = max(0, y - th - base - 4)
            cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
            cv2.putText(
                canvas,
                text,
                (x + 2, top + th + 2),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                (255, 255, 255),
                max(1, thickness // 2),
                cv2.LINE_AA,
            )
    return canvas


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
