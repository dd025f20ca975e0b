"""Inference runtimes: one place that decides threads and execution providers.

Every model runs on onnxruntime by default (SFace after its ``PRelu``
rewrite, docs/models.md); OpenCV's DNN engine remains SFace's alternative.

Execution providers (CPU, CUDA, ...) are chosen per load: the ones asked for
(``FaceLens(providers=...)``, ``facelens --providers``), else
``$FACELENS_PROVIDERS``, else the CPU alone; each must be one this
onnxruntime build reports available (:func:`resolve_providers`). The
registry builds a model inside :func:`using_providers`, so the model
families need not pass them on: :func:`create_session` takes the providers
in force.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import cv2
import numpy as np

from facelens import settings
from facelens.errors import ProviderUnavailableError

__all__ = [
    "Providers",
    "Session",
    "available_providers",
    "create_opencv_net",
    "create_session",
    "default_threads",
    "engine_in_force",
    "engine_of",
    "faces_per_call",
    "resolve_providers",
    "return_free_memory",
    "using_engine",
    "using_providers",
]

Providers = tuple[str, ...]
"""onnxruntime execution provider names, in order of preference."""

_IN_FORCE: ContextVar[Providers | None] = ContextVar("facelens_providers", default=None)
_ENGINE_IN_FORCE: ContextVar[str | None] = ContextVar("facelens_cpu_engine", default=None)


def default_threads() -> int:
    """Threads per inference session: ``FACELENS_THREADS`` or every core."""
    configured = settings.threads()
    if configured:
        return configured
    return max(1, os.cpu_count() or 1)


def available_providers() -> Providers:
    """The execution providers this onnxruntime build offers, in its order of preference."""
    import onnxruntime as ort

    return tuple(ort.get_available_providers())


def resolve_providers(requested: Sequence[str] | None = None) -> Providers:
    """The providers a session uses: ``requested``, else ``$FACELENS_PROVIDERS``, else CPU only.

    Raises :class:`ProviderUnavailableError` (naming the available ones) for a
    provider onnxruntime does not report available here.
    """
    chosen = tuple(requested or ()) or settings.providers() or settings.DEFAULT_PROVIDERS
    if chosen == settings.DEFAULT_PROVIDERS:  # every onnxruntime build has its CPU provider
        return chosen
    available = available_providers()
    missing = [name for name in chosen if name not in available]
    if missing:
        raise ProviderUnavailableError(
            f"onnxruntime here has no {', '.join(missing)}; available: {', '.join(available)} "
            f"(choose with --providers or ${settings.PROVIDERS.name})"
        )
    return chosen


@contextmanager
def using_providers(providers: Providers) -> Iterator[None]:
    """Sessions created inside (in this thread or task) use ``providers``."""
    token = _IN_FORCE.set(providers)
    try:
        yield
    finally:
        _IN_FORCE.reset(token)


class Session(Protocol):
    """What facelens asks of an inference session (onnxruntime's or :class:`OpenVinoSession`)."""

    def get_inputs(self) -> Sequence[Any]:
        """The inputs, each with a ``name``."""

    def get_outputs(self) -> Sequence[Any]:
        """The outputs, each with a ``name``."""

    def run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> Sequence[Any]:
        """The named outputs (all when ``None``) for the named inputs."""


def engine_in_force() -> str:
    """The CPU engine of sessions created now: an enclosing :func:`using_engine`'s, else
    ``$FACELENS_CPU_ENGINE`` (``openvino`` or ``onnxruntime``)."""
    return _ENGINE_IN_FORCE.get() or settings.cpu_engine()


@contextmanager
def using_engine(engine: str) -> Iterator[None]:
    """Models loaded inside (in this thread or task) use CPU ``engine`` (one of
    :data:`facelens.settings.CPU_ENGINES`), whatever ``$FACELENS_CPU_ENGINE`` says."""
    if engine not in settings.CPU_ENGINES:
        raise ValueError(
            f"unknown CPU engine {engine!r}; use one of {', '.join(settings.CPU_ENGINES)}"
        )
    token = _ENGINE_IN_FORCE.set(engine)
    try:
        yield
    finally:
        _ENGINE_IN_FORCE.reset(token)


def create_session(
    model_bytes: bytes,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    *,
    openvino_precision: str | None = None,
    model_sha256: str | None = None,
) -> Session:
    """A session for a serialized ONNX model, with graph optimisations on.

    ``providers``: as :func:`resolve_providers`, after those of an enclosing
    :func:`using_providers`. ``openvino_precision`` (``"bf16"`` or ``"f32"``):
    the model may run on OpenVINO at that precision, and does when only the
    CPU provider is in force and the engine in force (:func:`engine_in_force`)
    is ``openvino`` (the default); the face embedders and facelens's expression CNN ask
    for it, with their agreement to float32 measured (docs/benchmarks.md#openvino,
    #expression). Other models stay on onnxruntime. ``model_sha256``: the bytes' sha256
    (hex) when the caller has it, so that OpenVINO's compiled-model cache need not hash
    them again.
    """
    chosen = resolve_providers(providers or _IN_FORCE.get())
    if (
        openvino_precision is not None
        and chosen == ("CPUExecutionProvider",)
        and engine_in_force() == "openvino"
    ):
        from facelens.models.openvino_engine import OpenVinoSession

        return OpenVinoSession(
            model_bytes, threads or default_threads(), openvino_precision, model_sha256
        )
    import onnxruntime as ort  # here, not at the top: a process on OpenVINO alone never loads it

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: symbolic batch dims trigger shape warnings
    # Idle threads sleep instead of spinning: with 2 cores shared by several stages,
    # spinning threads steal the time the other stage needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No pre-planned buffers per input shape: with 2 workers running one session at a time
    # each, planning held 20-25 MB more at the peak of `eval lfw` for no CPU time measured.
    options.enable_mem_pattern = False
    session: Session = ort.InferenceSession(model_bytes, options, providers=list(chosen))
    return session


def engine_of(session: Session) -> str:
    """``"openvino"`` for a session :func:`create_session` put on OpenVINO, else ``"onnxruntime"``."""
    from facelens.models.openvino_engine import OpenVinoSession

    return "openvino" if isinstance(session, OpenVinoSession) else "onnxruntime"


def faces_per_call(session: Session) -> int:
    """Faces per call a face embedder's ``session`` runs best at:
    :attr:`~facelens.models.openvino_engine.OpenVinoSession.faces_per_call` on OpenVINO,
    else 1 (onnxruntime's CPU time per face is flat from 1 to 8 a call)."""
    from facelens.models.openvino_engine import OpenVinoSession

    return OpenVinoSession.faces_per_call if isinstance(session, OpenVinoSession) else 1


def create_opencv_net(model_bytes: bytes) -> cv2.dnn.Net:
    """An OpenCV DNN network from serialized ONNX bytes (already sha256-checked)."""
    return cv2.dnn.readNetFromONNX(np.frombuffer(model_bytes, dtype=np.uint8))


def return_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; else nothing).

    Building a model (folding SFace's graph, serializing it, onnxruntime's
    optimiser) frees tens of MB in small blocks that glibc keeps: after the
    three default models are built this returns about 55 MB
    (docs/benchmarks.md, "Memory").
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
