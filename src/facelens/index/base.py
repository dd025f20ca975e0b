"""What a template index offers the search: add, remove, top-k, save.

Two engines implement it: :class:`facelens.index.codes.CodeIndex` (the
default: a scan over 256-bit codes, then int8 rescoring) and
:class:`facelens.index.ann.AnnIndex` (an HNSW graph, usearch), kept for
comparison in ``benchmarks/million.py``. Scores they return are
approximate; :mod:`facelens.index.search` rescores candidates exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from facelens.types import FloatArray

__all__ = ["TemplateIndex"]


class TemplateIndex(Protocol):
    """Approximate top-k search over templates (unit float32 rows) keyed by template id."""

    dimension: int

    def __len__(self) -> int: ...

    @property
    def ids(self) -> np.ndarray:
        """The template ids held, sorted ``(N,)`` int64."""
        ...

    def add(self, ids: np.ndarray, vectors: FloatArray) -> None:
        """Insert ``vectors`` ``(N, D)`` under new keys ``ids`` ``(N,)``."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Delete these ids (unknown ones ignored), leaving no byte of them; how many went."""
        ...

    def search(self, probes: FloatArray, k: int) -> tuple[np.ndarray, FloatArray]:
        """``(ids, scores)``, both ``(P, k)``, best first; id ``-1`` where fewer were found."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically."""
        ...
