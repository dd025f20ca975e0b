"""What a gallery backend must do. The SQLite store is the embedded default."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facelens.errors import CalibrationMismatchError, GalleryModelMismatchError, InvalidNameError
from facelens.types import FloatArray, Person, StoredTemplate

__all__ = [
    "CalibrationRecord",
    "GalleryStore",
    "NewTemplate",
    "SearchServer",
    "TemplateMatrix",
    "calibration_audit_detail",
    "check_calibration_model",
    "clean_name",
    "lookup_names",
    "require_model",
]

MAX_NAME_LENGTH = 200  # characters, after normalisation
_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (e.g. a bidirectional override)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Co": "a private-use character",
    "Cs": "a lone surrogate",
    "Cn": "an unassigned code point",
}


def clean_name(name: str) -> str:
    """The one name rule, for every surface (Python API, CLI, service) and every backend.

    The name is NFC-normalised and runs of whitespace become one space. Refused with
    :class:`InvalidNameError`, naming the character by code point: control characters
    (newline, tab, ESC...), invisible formatting characters (bidirectional overrides and
    isolates U+202A-U+202E, U+2066-U+2069, marks U+200E/U+200F, zero-width characters),
    line/paragraph separators, private-use and unassigned code points; ``/``, ``.`` and
    ``..``, which cannot be one segment of the URL ``/api/people/{name}``; an empty name;
    more than :data:`MAX_NAME_LENGTH` characters.
    """
    normal = unicodedata.normalize("NFC", name)
    for char in normal:
        if char == "/":
            raise InvalidNameError(
                "a person's name cannot hold '/' (a name is part of the person's web address)"
            )
        kind = unicodedata.category(char)
        if not char.isprintable() and kind != "Zs":  # Zs: spaces, collapsed below
            label = unicodedata.name(char, "")
            described = f"U+{ord(char):04X}" + (f" {label}" if label else "")
            raise InvalidNameError(
                f"a person's name cannot hold {described}, {_KINDS.get(kind, kind)}"
            )
    cleaned = " ".join(normal.split())
    if not cleaned:
        raise InvalidNameError("a person's name cannot be empty")
    if cleaned in {".", ".."}:
        raise InvalidNameError(f"a person's name cannot be {cleaned!r} (it is a URL path step)")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"a person's name must be at most {MAX_NAME_LENGTH} characters")
    return cleaned


def lookup_names(name: str) -> list[str]:
    """The forms a person is looked up by (remove, show, rename, add photos): the name as
    :func:`clean_name` would store it (NFC, whitespace collapsed, nothing refused), then,
    if different, the name exactly as given: so a name stored by an older version that
    the rule now refuses (e.g. with '/' or ESC) can still be reached, renamed and erased."""
    key = " ".join(unicodedata.normalize("NFC", name).split())
    return [key] if key == name else [key, name]


def require_model(templates: list[NewTemplate], model_id: str) -> None:
    """Refuse templates made by another embedder than the gallery's ``model_id``."""
    for template in templates:
        if template.model_id != model_id:
            raise GalleryModelMismatchError(
                f"a template of {template.model_id} cannot go into a gallery of {model_id}"
            )


@dataclass(frozen=True)
class CalibrationRecord:
    """One calibration a gallery holds (see :mod:`facelens.match.deployment`): its version
    (1, 2, ... per gallery), when it was put in and taken out of force, and the record
    (id, embedder, counts, thresholds with intervals, Cllr, the calibration itself)."""

    version: int
    created: str  # ISO time, UTC
    removed: str | None  # ISO time it left force (removed or replaced); None: in force
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    def summary(self) -> dict[str, Any]:
        """What ``gallery info`` shows: everything but the raw calibration."""
        facts = {k: v for k, v in self.record.items() if k != "calibration"}
        return {**facts, "version": self.version, "removed": self.removed}


def check_calibration_model(record: dict[str, Any], model_id: str, where: str) -> None:
    """Refuse to store a calibration fitted for another embedder than the gallery's."""
    if record.get("model_id") != model_id:
        raise CalibrationMismatchError(
            f"the calibration {record.get('id')} was fitted for {record.get('model_id')}; "
            f"{where} holds templates of {model_id}, so it cannot be applied there"
        )


def calibration_audit_detail(record: dict[str, Any], version: int) -> dict[str, Any]:
    """The audit entry of a new calibration: what it was fitted on (never a template)."""
    return {
        "version": version,
        "model_id": record["model_id"],
        "people": record["people"],
        "images": record["images"],
        "genuine_pairs": record["genuine_pairs"],
        "impostor_pairs": record["impostor_pairs"],
        "sources": record["sources"],
    }


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


class SearchServer(Protocol):
    """A gallery whose server proposes candidates, so the whole gallery is never loaded
    into the application (PostgreSQL in the clear: its HNSW index); also what
    :class:`facelens.index.postgres_codes.PostgresCodeIndex` reads to keep its codes."""

    @property
    def encrypted(self) -> bool: ...

    def candidate_matrix(self, probes: FloatArray, k: int = 32) -> TemplateMatrix:
        """Every template of the people among the ``k`` nearest templates of any probe
        (``probes``: ``(Q, D)`` unit-norm float32)."""
        ...

    def people_matrix(self, template_ids: np.ndarray) -> TemplateMatrix:
        """Every template of the people who own any of ``template_ids``."""
        ...

    def write_version(self) -> int:
        """A counter that changes whenever any process commits a write."""
        ...

    def template_count(self) -> int: ...

    def template_ids(self) -> np.ndarray:
        """The ids of every template, increasing, ``(N,)`` int64."""
        ...

    def template_vectors(
        self, after_id: int = 0, limit: int = 65_536
    ) -> tuple[np.ndarray, FloatArray]:
        """Up to ``limit`` templates with an id above ``after_id``: ``(ids, vectors)``."""
        ...


class GalleryStore(Protocol):
    """Persistent people and templates; every write is one transaction.

    Besides people and templates, a store says how it is searched (what
    :class:`facelens.FaceLens` needs, without asking which backend it is): whether its
    templates are ``encrypted`` (then they are only ever searched in memory), the ``path``
    of its file (its code index is kept beside it; None for a server's gallery), and its
    ``search_server`` (None when the application searches the templates itself).
    """

    @property
    def model_id(self) -> str: ...

    @property
    def encrypted(self) -> bool:
        """True when templates and crops are stored as ciphertext (sealed with a key)."""
        ...

    @property
    def path(self) -> Path | None:
        """The gallery's file; None for a gallery on a database server."""
        ...

    @property
    def search_server(self) -> SearchServer | None:
        """What proposes candidates on the gallery's server, or None: the templates are
        scored in this process (a file, or an encrypted gallery)."""
        ...

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

    def store_calibration(self, record: dict[str, Any]) -> CalibrationRecord: ...

    def calibration(self) -> CalibrationRecord | None: ...

    def remove_calibration(self) -> CalibrationRecord | None: ...

    def calibration_history(self) -> list[CalibrationRecord]: ...

    def close(self) -> None: ...
