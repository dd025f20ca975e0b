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
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facelens import settings

if TYPE_CHECKING:
    import openvino

__all__ = ["BLOB_UNUSED_DAYS", "OpenVinoSession", "Port"]


@dataclass(frozen=True)
class Port:
    """An input or output of a session: its name and shape (as onnxruntime's ``NodeArg``;
    a dimension not fixed by the graph, such as the batch, is ``None``)."""

    name: str
    shape: tuple[int | None, ...] = ()

    @classmethod
    def of(cls, port: Any) -> Port:
        """The port of an OpenVINO model's or compiled model's input or output."""
        dims = port.get_partial_shape()
        return cls(port.any_name, tuple(d.get_length() if d.is_static else None for d in dims))


@cache
def _core() -> openvino.Core:
    """One OpenVINO core per process (it owns the CPU plugin and its thread pool)."""
    import openvino

    return openvino.Core()


def _blob_path(model_sha256: str, config: dict[str, Any]) -> Path | None:
    """Where the compiled model of the graph with this sha256 (hex) and these settings is
    kept; None without a cache.

    The key covers the graph's sha256, the settings, OpenVINO's version and
    the CPU's name (a compiled model holds kernels chosen for its instruction set).
    """
    folder = settings.graph_cache()
    if folder is None:
        return None
    import openvino

    hasher = hashlib.sha256(model_sha256.encode("ascii"))
    identity = (
        openvino.__version__,
        _core().get_property("CPU", "FULL_DEVICE_NAME"),
        sorted(config.items()),
    )
    hasher.update(repr(identity).encode())
    return folder / "openvino" / f"{hasher.hexdigest()[:32]}.blob"


BLOB_UNUSED_DAYS = 30
"""A compiled model not imported for this many days is removed when another is written
(blobs of older graphs, settings or OpenVINO versions are never read again)."""


def _write_blob(path: Path, compiled: openvino.CompiledModel) -> None:
    """Keep a compiled model for later processes (whole or not at all; errors ignored),
    and remove the blobs unused for :data:`BLOB_UNUSED_DAYS`."""
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
        oldest = time.time() - BLOB_UNUSED_DAYS * 86400
        for old in path.parent.glob("*.blob"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < oldest:
                    old.unlink()


class OpenVinoSession:
    """A compiled ONNX model run like an ``onnxruntime.InferenceSession`` (``run``, ``get_inputs``).

    Thread-safe: each thread gets its own infer request on the one compiled
    model, so threads share the weights. ``precision`` is OpenVINO's
    inference precision hint (``"bf16"`` or ``"f32"``); a CPU without
    bfloat16 runs float32 whatever the hint.
    """

    faces_per_call = 4
    """Faces per call the face embedders run at on OpenVINO, whose bfloat16 kernels waste
    more on small calls (two threads, CPU ms a face at 1 / 2 / 4 / 8 faces a call: SFace
    9.1 / 8.1 / 6.8 / 5.9, the int8 dlib 4.6 / 3.1 / 1.9 / 1.7; benchmarks/openvino_engine.py).
    ``facelens eval lfw`` on one fold: 12.0-12.2 s with 2 faces a call, 11.0-11.4 s with 4
    (+16 MB), 10.5-11.1 s with 8 (+30 MB more) (benchmarks/openvino_costs.py,
    docs/benchmarks.md#openvino-costs)."""

    def __init__(
        self, model_bytes: bytes, threads: int, precision: str, model_sha256: str | None = None
    ) -> None:
        """``model_sha256``: the sha256 (hex) of ``model_bytes`` when the caller has it
        (else it is computed here, to key the compiled-model cache)."""
        core = _core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            # Not pinned: on 2 cores shared with onnxruntime's detector threads,
            # pinned threads wait for a core that another stage holds.
            "ENABLE_CPU_PINNING": False,
        }
        compiled = None
        blob = None
        if settings.graph_cache() is not None:
            blob = _blob_path(model_sha256 or hashlib.sha256(model_bytes).hexdigest(), config)
        if blob is not None:
            with contextlib.suppress(OSError, RuntimeError):
                compiled = core.import_model(blob.read_bytes(), "CPU", config)
                os.utime(blob)  # in use: kept (see BLOB_UNUSED_DAYS)
        # The ports' names as the ONNX graph gives them: compiling adds other names
        # (onnxruntime's "291" beside "cls_8"); the model read and an imported blob have none.
        named: Any = compiled
        if compiled is None:
            named = core.read_model(io.BytesIO(model_bytes))
            compiled = core.compile_model(named, "CPU", config)
            if blob is not None:
                _write_blob(blob, compiled)
        self._compiled = compiled
        self._inputs = [Port.of(port) for port in named.inputs]
        self._outputs = [Port.of(port) for port in named.outputs]
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
