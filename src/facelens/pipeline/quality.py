"""A face's usability for recognition: one value in [0, 1] and the reasons it is lower.

Four factors, each mapped to [0, 1]; the quality is the weakest of them, so a
reason always names what to fix:

* size: inter-ocular distance in original pixels (below 32 px detail is lost;
  below 8 px nothing is left);
* sharpness: variance of the Laplacian of the aligned grey crop (motion or
  focus blur flattens it);
* pose: head turn (yaw) estimated from where the nose tip sits between the
  eyes; up to 30 degrees is fine, 65 degrees and more is a profile;
* detector score: below 0.5 the face may not be a face.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facelens.types import FloatArray, ImageArray, Quality

__all__ = ["assess_quality"]

GOOD_EYE_DISTANCE = 32.0
MIN_EYE_DISTANCE = 8.0
GOOD_SHARPNESS = 60.0
MIN_SHARPNESS = 5.0
GOOD_YAW = 30.0
MAX_YAW = 65.0
GOOD_SCORE = 0.8
MIN_SCORE = 0.5


def assess_quality(landmarks: FloatArray, aligned: ImageArray, score: float) -> Quality:
    """Quality of one face from its landmarks (original pixels), aligned RGB crop and score."""
    eye_distance = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    sharpness = float(cv2.Laplacian(cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
    yaw = estimate_yaw(landmarks)
    factors = {
        "size": _ramp(eye_distance, MIN_EYE_DISTANCE, GOOD_EYE_DISTANCE),
        "sharpness": _ramp(sharpness, MIN_SHARPNESS, GOOD_SHARPNESS),
        "pose": 1.0 - _ramp(abs(yaw), GOOD_YAW, MAX_YAW),
        "score": _ramp(score, MIN_SCORE, GOOD_SCORE),
    }
    messages = {
        "size": f"small face ({eye_distance:.0f} px between the eyes; {GOOD_EYE_DISTANCE:.0f}+ is best)",
        "sharpness": f"blurred (sharpness {sharpness:.0f}; {GOOD_SHARPNESS:.0f}+ is best)",
        "pose": f"head turned (about {abs(yaw):.0f} degrees; up to {GOOD_YAW:.0f} is best)",
        "score": f"uncertain detection (score {score:.2f})",
    }
    reasons = tuple(messages[name] for name, value in factors.items() if value < 1.0)
    return Quality(
        value=min(factors.values()),
        reasons=reasons,
        face_size=eye_distance,
        sharpness=sharpness,
        yaw=yaw,
        score=score,
    )


def estimate_yaw(landmarks: FloatArray) -> float:
    """Head turn in degrees from 5 landmarks (signed; 0 = frontal, +-90 = profile).

    The nose tip's offset from the eyes' midpoint, along the eye line, as a
    fraction of half the eye distance, read as the sine of the turn.
    """
    left_eye, right_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eye_vector = right_eye - left_eye
    half_distance = float(np.linalg.norm(eye_vector)) / 2
    if half_distance < 1e-6:
        return 90.0
    along = float(np.dot(nose - (left_eye + right_eye) / 2, eye_vector / (2 * half_distance)))
    return math.degrees(math.asin(max(-1.0, min(1.0, along / half_distance))))


def _ramp(value: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    return float(min(1.0, max(0.0, (value - low) / (high - low))))
