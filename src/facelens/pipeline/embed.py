"""Batched embedding of aligned crops."""

from __future__ import annotations

import numpy as np

from facelens.models.base import Embedder
from facelens.types import FloatArray, ImageArray

DEFAULT_BATCH_SIZE = 8
"""Crops per embedder call: per-face speed hardly changes past 8
(benchmarks/runtimes.py), while a batch of 32 SFace crops holds about 110 MB
more activations at its peak."""


def embed_crops(
    embedder: Embedder, crops: list[ImageArray], batch_size: int = DEFAULT_BATCH_SIZE
) -> FloatArray:
    """Templates ``(N, dimension)`` for ``N`` aligned RGB crops, run ``batch_size`` at a time."""
    if not crops:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    parts = [
        embedder.embed(np.stack(crops[start : start + batch_size]))
        for start in range(0, len(crops), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)
