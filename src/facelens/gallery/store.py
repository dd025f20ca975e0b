"""What a gallery backend must do. The SQLite store is the embedded default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facelens.errors import GalleryError, GalleryModelMismatchError
from facelens.types import FloatArray, Person, StoredTemplate

MAX_NAME_LENGTH = 200  # characters


def clean_name(name: str) -> str:
    """A person's name as every backend stores it: whitespace runs collapsed, not empty."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise GalleryError("a person's name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise GalleryError(f"a person's name must be at most {MAX_NAME_LENGTH} characters")
    return cleaned


def require_model(templates: list[NewTemplate], model_id: str) -> None:
    """Refuse templates made by another embedder than the gallery's ``model_id``."""
    for template in templates:
        if template.model_id != model_id:
            raise GalleryModelMismatchError(
                f"a template of {template.model_id} cannot go into a gallery of {model_id}"
            )


@dataclass(frozen=True)
class NewTemplate:
    """A template to store, with what it was made from."""

    vector: FloatArray  # unit-norm float32
    model_id: str
    source: str  # the photo it came from (a label, not the pixels)
    quality: float
    crop_jpeg: bytes | None = None  # the aligned face, for people to look at


@dataclass(frozen=True, eq=False)
class TemplateMatrix:
    """Every template of one model, ready for scoring."""

    template_ids: np.ndarray  # (R,) int64
    person_ids: np.ndarray  # (R,) int64, owner of each template
    vectors: FloatArray  # (R, D) float32
    names: dict[int, str]  # person id -> name
    qualities: np.ndarray  # (R,) float, quality of the photo each template came from


class GalleryStore(Protocol):
    """Persistent people and templates; every write is one transaction."""

    @property
    def model_id(self) -> str: ...

    def add_person(self, name: str) -> Person: ...

    def get_person(self, name: str) -> Person: ...

    def list_people(self) -> list[Person]: ...

    def rename_person(self, old: str, new: str) -> Person: ...

    def erase_person(self, name: str) -> int: ...

    def add_templates(
        self, name: str, templates: list[NewTemplate], *, create: bool = False
    ) -> list[int]: ...

    def list_templates(self, name: str) -> list[StoredTemplate]: ...

    def get_crop(self, template_id: int) -> bytes | None: ...

    def remove_template(self, template_id: int) -> None: ...

    def template_matrix(self) -> TemplateMatrix: ...

    def close(self) -> None: ...
