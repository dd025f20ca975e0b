"""Inference runtimes: one place that decides threads and providers.

Every model runs on onnxruntime by default (SFace after its ``PRelu``
rewrite, docs/models.md); OpenCV's DNN engine remains SFace's alternative.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

import cv2
import numpy as np
import onnxruntime as ort


def default_threads() -> int:
    """Threads per inference session: ``FACELENS_THREADS`` or every core."""
    configured = os.environ.get("FACELENS_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, os.cpu_count() or 1)


def create_session(model_bytes: bytes, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session for a serialized ONNX model, with graph optimisations on."""
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
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


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
