"""onnxruntime sessions: one place that decides threads and providers."""

from __future__ import annotations

import os

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
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
