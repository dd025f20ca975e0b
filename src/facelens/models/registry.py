"""Every model facelens can run, loaded lazily and kept in a bounded cache per process.

The registry holds a :class:`~facelens.models.spec.ModelSpec` per model (its
provenance and input contract) and builds models through :func:`load_detector`,
:func:`load_embedder` and :func:`load_attribute_model`; callers never import a
model family directly. Imports run one way: :mod:`facelens.models.spec` <- the
model families <- this module.

Loaded models are kept per (id, threads, runtime, execution providers), at
most ``$FACELENS_MODEL_CACHE`` of them (docs/settings.md): beyond it the least
recently loaded or asked-for is dropped from the cache (whoever still holds
it keeps it), so a long-running service that is asked for many models holds a
bounded number. Asking for a fusion also refreshes its parts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from facelens import settings
from facelens.errors import UnknownModelError
from facelens.models.base import Detector, Embedder
from facelens.models.fusion import FusionEmbedder
from facelens.models.runtime import (
    Providers,
    engine_in_force,
    resolve_providers,
    return_free_memory,
    using_providers,
)
from facelens.models.spec import ModelSpec, verified_model_bytes

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_EMBEDDER",
    "SFACE_EMBEDDER",
    "all_specs",
    "builtin_ids",
    "get_spec",
    "load_attribute_model",
    "load_detector",
    "load_embedder",
    "loaded_models",
]

_REGISTRY: dict[str, ModelSpec] = {}
_CacheKey = tuple[str, int | None, str, Providers, str]
"""(model id, threads, runtime, execution providers, CPU engine) of a loaded model."""
_LOADED: OrderedDict[_CacheKey, Any] = OrderedDict()  # least recently used first
_LOCK = threading.RLock()
"""Guards the registry and the cache (held briefly: models are built under their own lock)."""
_BUILDING: dict[_CacheKey, threading.Lock] = {}
"""One lock per model variant, held while it is built."""

DEFAULT_DETECTOR = "yunet-2023mar-int8bq"
SFACE_EMBEDDER = "sface-2021dec-int8bq"
DEFAULT_EMBEDDER = "fusion-sface-dlib-int8-flip"
"""The most accurate measured (LFW 99.67%, as its float32 twin ``fusion-sface-dlib-flip``;
SFace alone 99.43%), dlib's part in int8: docs/models.md, "The default embedder"."""


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
    model_id: str = DEFAULT_DETECTOR,
    threads: int | None = None,
    runtime: str | None = None,
    providers: Sequence[str] | None = None,
) -> Detector:
    """The detector ``model_id``, loaded once per process, thread count, runtime and
    execution providers (see :func:`~facelens.models.runtime.resolve_providers`)."""
    spec = get_spec(model_id)
    if spec.task != "detector":
        raise UnknownModelError(f"{model_id} is an {spec.task}, not a detector")
    detector: Detector = _load(spec, threads, runtime, providers)
    return detector


def load_embedder(
    model_id: str = DEFAULT_EMBEDDER,
    threads: int | None = None,
    runtime: str | None = None,
    providers: Sequence[str] | None = None,
) -> Embedder:
    """The embedder ``model_id``, loaded once per process, thread count, runtime and
    execution providers."""
    spec = get_spec(model_id)
    if spec.task != "embedder":
        raise UnknownModelError(f"{model_id} is a {spec.task}, not an embedder")
    embedder: Embedder = _load(spec, threads, runtime, providers)
    return embedder


def load_attribute_model(
    model_id: str, threads: int | None = None, providers: Sequence[str] | None = None
) -> Any:
    """The facial-attribute model ``model_id`` (expression, age/gender), loaded once per
    process, thread count and execution providers."""
    spec = get_spec(model_id)
    if spec.task != "attribute":
        raise UnknownModelError(f"{model_id} is a {spec.task}, not an attribute model")
    return _load(spec, threads, None, providers)


def loaded_models() -> list[str]:
    """The ids of the models in the cache, least recently used first (one per variant)."""
    with _LOCK:
        return [key[0] for key in _LOADED]


def _load(
    spec: ModelSpec, threads: int | None, runtime: str | None, providers: Sequence[str] | None
) -> Any:
    chosen = runtime or spec.runtimes[0]
    if chosen not in spec.runtimes:
        raise UnknownModelError(f"{spec.id} runs on {', '.join(spec.runtimes)}, not on {chosen!r}")
    resolved = resolve_providers(providers)
    engine = engine_in_force()  # using_engine's, else $FACELENS_CPU_ENGINE, read at each load
    key = (spec.id, threads, chosen, resolved, engine)
    with _LOCK:
        model = _LOADED.get(key)
        building = _BUILDING.setdefault(key, threading.Lock())
    if model is None:
        # Built under a lock of its own, so that two threads loading different models (the
        # detector, and a video verifier's recognizers in the background) build both at once;
        # two threads asking for the same model build it once.
        with building:
            with _LOCK:
                model = _LOADED.get(key)
            if model is None:
                with using_providers(resolved):
                    model = _build(spec, threads, chosen, resolved)
                with _LOCK:
                    _LOADED[key] = model
                return_free_memory()
    with _LOCK:
        for part, _ in spec.parts:  # a fusion in use keeps its parts
            part_key = (part, threads, get_spec(part).runtimes[0], resolved, engine)
            if part_key in _LOADED:
                _LOADED.move_to_end(part_key)
        _LOADED[key] = model  # back in, should another thread's load have dropped it meanwhile
        _LOADED.move_to_end(key)
        while len(_LOADED) > settings.model_cache():
            _LOADED.popitem(last=False)
        return model


def _build(spec: ModelSpec, threads: int | None, runtime: str, providers: Providers) -> Any:
    """A fusion from its loaded parts, any other model from its verified file."""
    if spec.parts:
        parts = [load_embedder(part, threads, providers=providers) for part, _ in spec.parts]
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
