"""Labelled images for evaluation, and one template per image.

A *tree* is a folder with one sub-folder per person (``ORL: s1/1.pgm``); every
file below a person's folder is one of their images, whatever its name ends
with (Yale files have no extension): files that do not decode are reported,
not fatal. A flat folder (``yalefaces/subject01.happy``) takes the identity
from the file name: the part before the first dot, or the first group of
``identity_regex`` when given. Hidden files are skipped.

Templates come from one face per image: the largest (the only one, in
portrait sets), or the one nearest the image centre (LFW's convention for
the labelled person); images with no face found are counted and listed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facelens.errors import InputError
from facelens.evaluation.lfw import central_face
from facelens.pipeline.faces import FacePipeline
from facelens.types import FloatArray

__all__ = ["FaceRule", "LabelledImage", "LabelledSet", "TemplateSet", "embed_images", "read_tree"]

FaceRule = Literal["largest", "central"]


@dataclass(frozen=True)
class LabelledImage:
    """One image of a known person; ``key`` is its path relative to the dataset root (POSIX)."""

    identity: str
    path: Path
    key: str


@dataclass(frozen=True)
class LabelledSet:
    """The images of a dataset, sorted by key, with how identities were read."""

    root: Path
    images: tuple[LabelledImage, ...]
    identity_rule: str
    ignored: tuple[str, ...] = ()  # files outside any person's folder

    @property
    def identities(self) -> list[str]:
        return sorted({image.identity for image in self.images})


def read_tree(root: Path, identity_regex: str | None = None) -> LabelledSet:
    """The labelled images under ``root`` (folder per person, or a flat folder)."""
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    pattern = re.compile(identity_regex) if identity_regex else None
    nested = any(len(p.relative_to(root).parts) > 1 for p in files)
    images, ignored = [], []
    for path in files:
        key = path.relative_to(root).as_posix()
        if pattern is not None:
            match = pattern.search(key)
            identity = (match.group(1) if match.groups() else match.group(0)) if match else None
        elif nested:
            identity = key.split("/")[0] if "/" in key else None
        else:
            identity = path.name.split(".")[0]
        if identity:
            images.append(LabelledImage(identity, path, key))
        else:
            ignored.append(key)
    if pattern is not None:
        rule = f"first group of the regex {identity_regex!r} on the relative path"
    elif nested:
        rule = "name of the top-level folder"
    else:
        rule = "file name before the first dot"
    if not images:
        raise InputError(f"{root}: no labelled images found ({rule})")
    return LabelledSet(root, tuple(images), rule, tuple(ignored))


@dataclass
class TemplateSet:
    """One template per image that yielded a face; ``row[key]`` indexes ``matrix``."""

    matrix: FloatArray  # (N, D) unit-norm rows
    row: dict[str, int]
    qualities: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) face quality per row
    no_face: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)  # {"image", "error"}
    several_faces: int = 0  # images where one of several faces was chosen
    face_rule: str = "largest"

    def has(self, key: str) -> bool:
        return key in self.row

    def summary(self, total: int) -> dict[str, Any]:
        """JSON: how many images were used, and which were not (and why)."""
        return {
            "images": total,
            "templates": len(self.row),
            "no_face": len(self.no_face),
            "no_face_images": self.no_face,
            "unreadable": len(self.errors),
            "unreadable_images": self.errors,
            "several_faces": self.several_faces,
            "face_rule": self.face_rule,
        }


def embed_images(
    pipeline: FacePipeline,
    images: Iterable[tuple[str, Path]],
    on_done: Callable[[], None] | None = None,
    face: FaceRule = "largest",
) -> TemplateSet:
    """The template of one face (``face``: the largest or the most central) of each
    ``(key, path)``; failures are recorded."""
    pairs = list(images)
    vectors: list[np.ndarray] = []
    qualities: list[float] = []
    result = TemplateSet(np.zeros((0, 0), np.float32), {}, face_rule=face)
    for (key, _), faces in zip(pairs, pipeline.detect_many([p for _, p in pairs]), strict=True):
        if faces.error is not None:
            result.errors.append({"image": key, "error": str(faces.error)})
        elif not faces.faces:
            result.no_face.append(key)
        else:
            chosen = (
                central_face(faces.faces, faces.width, faces.height)
                if face == "central"
                else faces.faces[0]  # detect_many sorts faces largest first
            )
            assert chosen.template is not None
            result.row[key] = len(vectors)
            vectors.append(chosen.template.vector)
            qualities.append(chosen.quality.value)
            result.several_faces += len(faces.faces) > 1
        if on_done:
            on_done()
    if vectors:
        result.matrix = np.stack(vectors).astype(np.float32)
        result.qualities = np.array(qualities)
    return result
