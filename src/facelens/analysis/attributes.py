"""What the attribute models say about one face: expression, apparent age and gender.

These are *apparent* attributes read from pixels by models trained on
particular data sets (FER2013 for expression; public age/gender sets for
FaceRes): what a face looks like, not who the person is, how they feel or how
they identify. See docs/models.md for what the models are not good for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from facelens.models.attributes import EXPRESSIONS
from facelens.types import Face

__all__ = ["AnalyzedFace", "FaceAttributes", "expression_dict"]

Gender = Literal["female", "male"]


@dataclass(frozen=True)
class FaceAttributes:
    """Apparent attributes of one face.

    ``expression_scores`` holds a probability for each of the 7 classes of
    :data:`EXPRESSIONS` (angry, disgust, fear, happy, sad, surprise, neutral);
    they sum to 1 and ``expression`` is the most likely. ``age`` is apparent
    age in years; ``male_score`` the model's score in ``[0, 1]`` that the face
    looks male, and ``gender`` its reading (``male`` at and above 0.6, the
    threshold of the model's authors). Age and gender are ``None`` when they
    were not asked for.
    """

    expression: str
    expression_scores: dict[str, float]
    age: float | None = None
    gender: Gender | None = None
    male_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "expression_scores": {k: round(v, 4) for k, v in self.expression_scores.items()},
            "age": None if self.age is None else round(self.age, 1),
            "gender": self.gender,
            "male_score": None if self.male_score is None else round(self.male_score, 3),
        }

    def summary(self) -> str:
        """A short label for people: ``happy 0.93, 41 y, female``."""
        parts = [f"{self.expression} {self.expression_scores[self.expression]:.2f}"]
        if self.age is not None:
            parts.append(f"{self.age:.0f} y")
        if self.gender is not None:
            parts.append(self.gender)
        return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class AnalyzedFace:
    """A face of an image with its apparent attributes.

    ``cropped`` is true when no face was detected and the whole image was taken
    as the face (a tight face crop, see :mod:`facelens.analysis.tight`): its box
    is the image and its landmarks are placed, not found.
    """

    face: Face
    attributes: FaceAttributes
    cropped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The face's JSON form (box, landmarks, score, quality) plus ``attributes`` and
        ``cropped``."""
        data = self.face.to_dict()
        data["attributes"] = self.attributes.to_dict()
        data["cropped"] = self.cropped
        return data


def expression_dict(scores: Any) -> dict[str, float]:
    """A row of 7 probabilities as ``{class: probability}`` in :data:`EXPRESSIONS` order."""
    return {label: float(value) for label, value in zip(EXPRESSIONS, scores, strict=True)}
