"""Batched embedding of aligned crops."""

from __future__ import annotations

import math

import numpy as np

from facelens.models.base import BatchedEmbedder, Embedder
from facelens.models.fusion import FusionEmbedder
from facelens.types import FloatArray, ImageArray
from facelens.vectors import unit_rows

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EMBED_BATCH_SIZE",
    "call_size",
    "embed_crops",
    "embed_face_crops",
]

DEFAULT_BATCH_SIZE = 8
"""Images per chunk of :meth:`FacePipeline.detect_many` (a caller's batch)."""

EMBED_BATCH_SIZE = 2
"""Crops per embedder call. CPU time per face is the same from 1 to 8 crops a
call on onnxruntime (SFace 14.4 / 13.7 / 13.5 / 14.2 ms at 1 / 2 / 4 / 8,
dlib 4.4 / 4.2 / 4.1 / 3.9 ms, one thread), while the activations grow with
the batch: 8 SFace crops add about 150 MB to the process, 1 crop 2 MB
(docs/benchmarks.md, "Memory")."""


def call_size(embedder: Embedder, requested: int) -> int:
    """Faces per call for ``embedder``: ``requested``, raised to the faces a call the
    embedder states it runs best at (:class:`facelens.models.base.BatchedEmbedder`: 4 on
    OpenVINO, :attr:`facelens.models.openvino_engine.OpenVinoSession.faces_per_call`)."""
    if isinstance(embedder, BatchedEmbedder):
        return max(requested, embedder.faces_per_call)
    return requested


def embed_crops(
    embedder: Embedder,
    crops: list[ImageArray],
    batch_size: int = DEFAULT_BATCH_SIZE,
    flip: bool = False,
) -> FloatArray:
    """Templates ``(N, dimension)`` for ``N`` aligned RGB crops, run ``batch_size`` at a time.

    With ``flip`` (test-time augmentation), each template is the normalised
    sum of the templates of the crop and of its mirror image: twice the
    inference for a small gain in accuracy (docs/benchmarks.md). The shipped
    calibrations are measured without it.
    """
    if not crops:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    parts = [
        _embed_batch(embedder, np.stack(crops[start : start + batch_size]), flip)
        for start in range(0, len(crops), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)


def _embed_batch(embedder: Embedder, batch: ImageArray, flip: bool) -> FloatArray:
    if not flip:
        return embedder.embed(batch)
    both = embedder.embed(np.concatenate([batch, batch[:, :, ::-1]]))
    return unit_rows(both[: len(batch)] + both[len(batch) :])


def embed_face_crops(
    embedder: Embedder,
    crops_per_part: list[list[ImageArray]],
    batch_size: int = DEFAULT_BATCH_SIZE,
    flip: bool = False,
) -> FloatArray:
    """Templates of N faces from their crops, one list per part of the embedder.

    A plain embedder has one part; a :class:`FusionEmbedder` combines the
    parts' templates (see :mod:`facelens.models.fusion`). A fusion's flipped
    parts always add their mirror image; ``flip`` adds it to the others too.
    """
    if not isinstance(embedder, FusionEmbedder):
        return embed_crops(embedder, crops_per_part[0], call_size(embedder, batch_size), flip)
    scaled = [
        embed_crops(part, crops, call_size(part, batch_size), flip or part_flip) * math.sqrt(weight)
        for part, weight, part_flip, crops in zip(
            embedder.parts, embedder.weights, embedder.flips, crops_per_part, strict=True
        )
    ]
    fused: FloatArray = np.concatenate(scaled, axis=1).astype(np.float32)
    return fused
