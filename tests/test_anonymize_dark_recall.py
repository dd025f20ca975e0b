"""Dark frames: the hiding search smooths a very dark frame before brightening it, so the
codec's noise and the 8-bit steps, multiplied by the gain, do not hide a face's features."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelens.models.registry import load_detector
from facelens.privacy.recall import find_faces_to_hide, hiding_detector
from facelens.video import open_video
from tests.conftest import data_path


@pytest.mark.shared_data
@pytest.mark.slow
def test_fast_head_turns_at_4_percent_brightness_are_found() -> None:
    """d12 (fast head turns), one frame in 8, each at 4% of its brightness and saved as JPEG
    (quality 85, as a codec would): the hiding search finds at least 90% of the faces it
    finds in the bright frames (measured: 46 of 46 in one frame in 4; 18 before smoothing)."""
    paths = sorted(data_path("videos").rglob("d12.mp4"))
    if not paths:
        pytest.skip("d12.mp4 not found in the shared videos")
    detector = hiding_detector(load_detector())
    faces = found = 0
    with open_video(paths[0], every=8) as reader:
        for frame in reader:
            truth = find_faces_to_hide(detector, frame.pixels, 960)
            dark = (frame.pixels.astype(np.float32) * 0.04).astype(np.uint8)
            _, jpeg = cv2.imencode(".jpg", dark, [cv2.IMWRITE_JPEG_QUALITY, 85])
            dark = np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED))
            hidden = find_faces_to_hide(detector, dark, 960)
            for face in truth:
                faces += 1
                cx, cy = face.box.center
                found += any(
                    abs(d.box.center[0] - cx) < face.box.width / 2
                    and abs(d.box.center[1] - cy) < face.box.height / 2
                    for d in hidden
                )
    assert faces >= 15
    assert found >= 0.9 * faces, (found, faces)
