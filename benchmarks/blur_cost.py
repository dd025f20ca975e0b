"""What the blur of a large face costs: shrink-4x-then-blur (before) against shrink-to-3-px-sigma.

    .venv/bin/python benchmarks/blur_cost.py

Takes the face region (grown by the anonymization margins) of the first frame
of the shared talking-head clip enlarged to 720p height, as
``video_throughput.py`` does, and blurs it both ways 200 times on one core:
milliseconds per blur and how far apart the two pictures are (grey levels,
mean and max over pixels and channels).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from facelens.pipeline.faces import FacePipeline
from facelens.privacy import methods
from facelens.privacy.regions import grow_box
from facelens.video import open_video

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared" / "data"))
CLIP = DATA / "videos/OpenTalker+SadTalker/examples/ref_video/WDA_KatieHill_000.mp4"


def shrink_4x_blur(patch: np.ndarray) -> np.ndarray:
    """The blur before session 3: a copy shrunk 4x, sigma = 1/6 of the longer side."""
    height, width = patch.shape[:2]
    sigma = max(height, width) / 6
    small = cv2.resize(patch, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / 4, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


def per_call_ms(blur: object, patch: np.ndarray, repeats: int = 200) -> float:
    assert callable(blur)
    blur(patch)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        blur(patch)
    return (time.perf_counter() - started) / repeats * 1000


def main() -> int:
    if not CLIP.is_file():
        print(f"clip not found: {CLIP} (set FACELENS_DATA)", file=sys.stderr)
        return 1
    cv2.setNumThreads(1)
    with open_video(CLIP, end=0.0) as reader:
        frame = next(iter(reader)).pixels
    frame = cv2.resize(frame, (720, 720), interpolation=cv2.INTER_CUBIC)  # the 720p clip's face
    face = FacePipeline(max_upscale=1.0).detect(frame, embed=False)[0]
    region = grow_box(face.box, 720, 720)
    x0, y0 = int(region.x), int(region.y)
    patch = frame[y0 : y0 + int(region.height), x0 : x0 + int(region.width)].copy()
    before, after = shrink_4x_blur(patch), methods._blurred(patch)
    difference = np.abs(before.astype(np.int16) - after.astype(np.int16))
    result = {
        "region_px": [int(patch.shape[1]), int(patch.shape[0])],
        "before_ms": round(per_call_ms(shrink_4x_blur, patch), 3),
        "after_ms": round(per_call_ms(methods._blurred, patch), 3),
        "mean_difference": round(float(difference.mean()), 3),
        "max_difference": int(difference.max()),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
