"""Drawing lives in one module, ``apps/draw.py``, for photos and video alike.

The applications and surfaces (``apps``, ``api``, ``cli``, ``service``) never call
OpenCV's drawing functions themselves; ``draw_faces`` (photos) and ``draw_boxes``
(video frames) draw a box with a label above it in white on the box's colour.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import facelens
from facelens.apps.draw import KNOWN, UNKNOWN, draw_boxes, draw_faces
from facelens.types import Box, Face, Quality

SOURCE = Path(facelens.__file__).parent
DRAWING_CALLS = {"rectangle", "circle", "line", "putText", "getTextSize", "polylines", "ellipse"}


def cv2_drawing_calls(path: Path) -> list[str]:
    """``cv2.<drawing function>`` calls in a file, as ``file:line name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "cv2"
            and node.func.attr in DRAWING_CALLS
        ):
            found.append(f"{path.relative_to(SOURCE)}:{node.lineno} cv2.{node.func.attr}")
    return found


def test_the_applications_and_surfaces_draw_only_through_apps_draw() -> None:
    surfaces = [SOURCE / "api.py"] + [
        path for part in ("apps", "cli", "service") for path in (SOURCE / part).rglob("*.py")
    ]
    elsewhere = [
        call
        for path in sorted(surfaces)
        if path != SOURCE / "apps" / "draw.py"
        for call in cv2_drawing_calls(path)
    ]
    assert not elsewhere, "drawing outside apps/draw.py:\n" + "\n".join(elsewhere)
    assert cv2_drawing_calls(SOURCE / "apps" / "draw.py")  # the checker sees real calls


def test_a_video_box_and_a_photo_face_are_drawn_the_same_way() -> None:
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    box = Box(100.0, 120.0, 80.0, 90.0)
    framed = draw_boxes(image, [box], ["#3 Ada 0.81"], [KNOWN])
    quality = Quality(0.9, (), 40.0, 100.0, 0.0, 0.95)
    face = Face(box, np.full((5, 2), 140.0, dtype=np.float32), 0.9, quality)
    photo = draw_faces(image, [face], ["Ada"], [UNKNOWN])
    assert not image.any()  # both draw on a copy
    assert tuple(photo[140, 140]) == UNKNOWN and not framed[140, 140].any()  # landmarks: photos
    for canvas, colour in ((framed, KNOWN), (photo, UNKNOWN)):
        assert tuple(canvas[160, 100]) == colour  # the box's left edge, in its colour
        label = canvas[95:120, 100:140]  # the label sits just above the box
        white = (label == 255).all(axis=2)
        filled = (label == colour).all(axis=2)
        assert white.any() and filled.sum() > white.sum()  # white text on the box's colour
        assert not canvas[200:240, 0:90].any()  # nothing far from the box
