"""Apparent attributes of the faces of an image: expression, age and gender.

:class:`AttributeAnalyzer` takes an RGB image and the faces found in it (any
object with 5 ``landmarks``: a :class:`~facelens.types.Face` or a
:class:`~facelens.types.Detection`), cuts each model's own crop from the
full-resolution pixels and runs the models once per image on all its faces.
Models load lazily, once per process, from the registry (sha256-checked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from facelens.analysis.attributes import FaceAttributes, expression_dict
from facelens.analysis.crops import age_gender_crop, expression_crop, resize_grey
from facelens.models import registry
from facelens.models.attributes import (
    AGE_GENDER_SPEC,
    CNN48_ID,
    CNN48_INT8_SPEC,
    EXPRESSION_SPECS,
    EXPRESSIONS,
    MALE_THRESHOLD,
    AgeGenderNet,
    ExpressionNet,
)
from facelens.models.runtime import engine_in_force
from facelens.types import FloatArray, ImageArray

__all__ = [
    "EXPRESSION_MODELS",
    "AttributeAnalyzer",
    "default_expression_model",
]


def default_expression_model(engine: str | None = None) -> str:
    """The expression model used unless another is asked for: facelens's CNN in int8 where
    the CPU engine (``engine``, else :func:`~facelens.models.runtime.engine_in_force`) is
    onnxruntime, in float32 (bfloat16 on OpenVINO) where it is OpenVINO. Both give the same
    accuracy through the pipeline; each is the faster on its engine
    (docs/benchmarks.md#expression-int8, docs/models.md#attributes).

    Decided when a model is wanted, never at import: a bad ``$FACELENS_CPU_ENGINE`` is then
    reported by the command that needs an engine, not by every command's start-up."""
    return CNN48_INT8_SPEC.id if (engine or engine_in_force()) == "onnxruntime" else CNN48_ID


EXPRESSION_MODELS = tuple(spec.id for spec in EXPRESSION_SPECS)
"""Every selectable expression model id, facelens's own first (the default is one of those)."""
DEFAULT_AGE_GENDER_MODEL = AGE_GENDER_SPEC.id


class HasLandmarks(Protocol):
    """A face located by its 5 landmarks, ``(5, 2)`` pixels ``(x, y)`` (see facelens.types)."""

    @property
    def landmarks(self) -> FloatArray: ...


class AttributeAnalyzer:
    """Expression probabilities, apparent age and gender per face.

    Args:
        age_gender: also estimate apparent age and gender (a second, larger
            model: about 10x the expression model's work per face).
        threads: onnxruntime threads per model (default: every core).
        expression_model: the expression model's id (:data:`EXPRESSION_MODELS`); default:
            :func:`default_expression_model` for the engine in force now.
        providers: onnxruntime execution providers (default: ``$FACELENS_PROVIDERS``,
            else the CPU).
    """

    def __init__(
        self,
        *,
        age_gender: bool = True,
        threads: int | None = None,
        expression_model: str | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        self.age_gender = age_gender
        self.threads = threads
        self.providers = providers
        self.expression_model_id = expression_model or default_expression_model()

    @property
    def expression_model(self) -> ExpressionNet:
        model: ExpressionNet = registry.load_attribute_model(
            self.expression_model_id, self.threads, self.providers
        )
        return model

    @property
    def age_gender_model(self) -> AgeGenderNet:
        model: AgeGenderNet = registry.load_attribute_model(
            DEFAULT_AGE_GENDER_MODEL, self.threads, self.providers
        )
        return model

    def expression_scores(self, image: ImageArray, faces: Sequence[HasLandmarks]) -> FloatArray:
        """``(N, 7)`` expression probabilities (:data:`EXPRESSIONS` order) for the faces of
        an RGB uint8 image."""
        if not faces:
            return np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        model = self.expression_model
        side = model.input_size[0]
        return model.predict(np.stack([expression_crop(image, f.landmarks, side) for f in faces]))

    def expression_scores_of_crops(self, crops: Sequence[np.ndarray]) -> FloatArray:
        """``(N, 7)`` probabilities for faces that are already cropped (grey or RGB uint8,
        any size; e.g. CK+48's 48x48 crops): resized to the model's input, no detection."""
        if not crops:
            return np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)
        model = self.expression_model
        side = model.input_size[0]
        return model.predict(np.stack([resize_grey(c, side) for c in crops]))

    def analyze(self, image: ImageArray, faces: Sequence[HasLandmarks]) -> list[FaceAttributes]:
        """The attributes of each face of the RGB uint8 ``image``, in the order given."""
        if not faces:
            return []
        expressions = self.expression_scores(image, faces)
        ages: list[float | None] = [None] * len(faces)
        males: list[float | None] = [None] * len(faces)
        if self.age_gender:
            crops = np.stack([age_gender_crop(image, f.landmarks) for f in faces])
            age_values, male_values = self.age_gender_model.predict(crops)
            ages, males = [float(a) for a in age_values], [float(m) for m in male_values]
        return [
            attributes_from_scores(scores, age, male)
            for scores, age, male in zip(expressions, ages, males, strict=True)
        ]


def attributes_from_scores(
    expression_scores: FloatArray, age: float | None = None, male_score: float | None = None
) -> FaceAttributes:
    """:class:`FaceAttributes` from a row of 7 expression probabilities (and age, male score)."""
    scores = expression_dict(expression_scores)
    return FaceAttributes(
        expression=max(scores, key=scores.__getitem__),
        expression_scores=scores,
        age=age,
        gender=None if male_score is None else "male" if male_score >= MALE_THRESHOLD else "female",
        male_score=male_score,
    )
