"""Every model facelens can run, loaded lazily and once per process.

The registry holds a :class:`~facelens.models.spec.ModelSpec` per model (its
provenance and input contract) and builds models through :func:`load_detector`,
:func:`load_embedder` and :func:`load_attribute_model`; callers never import a
model family directly. Imports run one way: :mod:`facelens.models.spec` <- the
model families <- this module.
"""

from __future__ import annotations

import threading
from typing import Any

from facelens.errors import UnknownModelError
from facelens.models.base import Detector, Embedder
from facelens.models.fusion import FusionEmbedder
from facelens.models.runtime import return_free_memory
from facelens.models.spec import ModelSpec, verified_model_bytes

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
        from facelens.models.user import user_spec  # models the user registered

        found = user_spec(model_id)
        if found is not None:
            return found
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"no model {model_id!r}; known models: {known}") from None


def all_specs() -> list[ModelSpec]:
    """The shipped models, then those the user registered (``facelens models add``)."""
    from facelens.models.user import user_specs

    _ensure_builtin_models()
    return list(_REGISTRY.values()) + [s for s in user_specs() if s.id not in _REGISTRY]


def builtin_ids() -> set[str]:
    """The ids of the models that ship with facelens."""
    _ensure_builtin_models()
    return set(_REGISTRY)


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
            _LOADED[key] = _build(spec, threads, chosen)
            return_free_memory()
        return _LOADED[key]


def _build(spec: ModelSpec, threads: int | None, runtime: str) -> Any:
    """A fusion from its loaded parts, any other model from its verified file."""
    if spec.parts:
        parts = [load_embedder(part, threads) for part, _ in spec.parts]
        return FusionEmbedder(
            spec.id,
            parts,
            [weight for _, weight in spec.parts],
            [part in spec.flipped_parts for part, _ in spec.parts],
        )
    if spec.factory is None:
        raise UnknownModelError(f"{spec.id} has neither a factory nor parts")
    return spec.factory(spec, verified_model_bytes(spec), threads, runtime)


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
        register(dlib_resnet.INT8_SPEC)
        register(fusion.fusion_spec())
        register(fusion.accurate_fusion_spec())
        register(fusion.accurate_fusion_spec(int8=True))
        from facelens.models import attributes

        for expression_spec in attributes.EXPRESSION_SPECS:
            register(expression_spec)
        register(attributes.AGE_GENDER_SPEC)
        _BUILTINS_LOADED = True
