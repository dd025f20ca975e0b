"""OpenVINO as a second CPU engine: the face embedders in bfloat16 where the CPU has it.

On a CPU with AMX (or AVX-512 BF16) OpenVINO runs convolutions in bfloat16
with float32 accumulation: SFace 16.8 -> 6.8 CPU ms a face and dlib's ResNet
4.6 -> 1.3 (one thread, batches of 2), with templates at cosine >= 0.9990
and >= 0.99996 to onnxruntime's float32 ones on 300 LFW faces
(benchmarks/openvino_engine.py, docs/benchmarks.md#openvino). Elsewhere it runs float32, about as fast as
onnxruntime. :func:`facelens.models.runtime.create_session` decides which
engine a model gets; this module only wraps OpenVINO in the small part of
onnxruntime's session interface that facelens uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facelens import settings

if TYPE_CHECKING:
    import openvino

__all__ = ["OpenVinoSession", "Port"]


@dataclass(frozen=True)
class Port:
    """An input or output of a session: its name (as onnxruntime's ``NodeArg.name``)."""

    name: str


@cache
def _core() -> openvino.Core:
    """One OpenVINO core per process (it owns the CPU plugin and its thread pool)."""
    import openvino

    return openvino.Core()


def _blob_path(model_bytes: bytes, config: dict[str, Any]) -> Path | None:
    """Where the compiled model for these bytes and settings is kept; None without a cache.

    The key covers the model's sha256, the settings, OpenVINO's version and
    the CPU's name (a compiled model holds kernels chosen for its instruction set).
    """
    folder = settings.graph_cache()
    if folder is None:
        return None
    import openvino

    hasher = hashlib.sha256(model_bytes)
    identity = (
        openvino.__version__,
        _core().get_property("CPU", "FULL_DEVICE_NAME"),
        sorted(config.items()),
    )
    hasher.update(repr(identity).encode())
    return folder / "openvino" / f"{hasher.hexdigest()[:32]}.blob"


def _write_blob(path: Path, compiled: openvino.CompiledModel) -> None:
    """Keep a compiled model for later processes (whole or not at all; errors ignored)."""
    with contextlib.suppress(OSError, RuntimeError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(compiled.export_model().getbuffer())
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


class OpenVinoSession:
    """A compiled ONNX model run like an ``onnxruntime.InferenceSession`` (``run``, ``get_inputs``).

    Thread-safe: each thread gets its own infer request on the one compiled
    model, so threads share the weights. ``precision`` is OpenVINO's
    inference precision hint (``"bf16"`` or ``"f32"``); a CPU without
    bfloat16 runs float32 whatever the hint.
    """

    def __init__(self, model_bytes: bytes, threads: int, precision: str) -> None:
        core = _core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            # Not pinned: on 2 cores shared with onnxruntime's detector threads,
            # pinned threads wait for a core that another stage holds.
            "ENABLE_CPU_PINNING": False,
        }
        blob = _blob_path(model_bytes, config)
        compiled = None
        if blob is not None:
            with contextlib.suppress(OSError, RuntimeError):
                compiled = core.import_model(io.BytesIO(blob.read_bytes()), "CPU", config)
        # The ports' names as the ONNX graph gives them: compiling adds other names
        # (onnxruntime's "291" beside "cls_8"); the model read and an imported blob have none.
        named: Any = compiled
        if compiled is None:
            named = core.read_model(io.BytesIO(model_bytes))
            compiled = core.compile_model(named, "CPU", config)
            if blob is not None:
                _write_blob(blob, compiled)
        self._compiled = compiled
        self._inputs = [Port(port.any_name) for port in named.inputs]
        self._outputs = [Port(port.any_name) for port in named.outputs]
        del named
        self._requests = threading.local()

    @property
    def precision(self) -> str:
        """The precision OpenVINO chose for this CPU: ``"bf16"`` or ``"f32"``."""
        return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").to_string())

    def get_inputs(self) -> list[Port]:
        """The model's inputs, in order."""
        return list(self._inputs)

    def get_outputs(self) -> list[Port]:
        """The model's outputs, in order."""
        return list(self._outputs)

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The named outputs (all when ``None``) for ``feeds``, as arrays this call owns."""
        names = output_names or [port.name for port in self._outputs]
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        request.infer({name: np.ascontiguousarray(value) for name, value in feeds.items()})
        return [np.array(request.get_tensor(name).data, copy=True) for name in names]
