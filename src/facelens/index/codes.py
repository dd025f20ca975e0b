"""A compact-code index of templates: every template is scanned, by a 32-byte code.

Why not a graph: face templates spread over all their dimensions (the
cosines between different people sit near 0.1 +- 0.09), which is the hard
case for HNSW graphs: at a million templates usearch's graph (M 16) found
the exact nearest template for only 88% of real probes at 2.0 ms, and FAISS
inverted lists (4,096 lists) for 96% while scanning an eighth of the gallery
(docs/benchmarks.md#million). A scan over short codes has no such blind
spot: every template is looked at, and how well its code ranks the true
nearest one depends on their cosine to the probe (about 0.6 for the same
person), not on how the other templates are spread.

The codes are product-quantization codes scanned with FAISS's "fast scan"
(``IndexPQFastScan``): a template of ``D`` dimensions is cut into ``D / 2``
pieces of 2 dimensions, and each piece is replaced by the nearest of 16
centroids learnt for that piece (4 bits): ``D / 4`` bytes, 32 for SFace's
128 dimensions. A probe's inner product with every code is summed from small
look-up tables held in SIMD registers, so a million codes (32 MB) are scanned
in about 1.3 ms on one core. The best ``k`` come back with these approximate
cosines; :mod:`facelens.index.search` then scores them exactly against the
gallery's float32 templates. Nothing else is held: a million 128-dimensional
templates take 32 MB of codes and 8 MB of ids.

The centroids are learnt from the first templates added (at most
:data:`TRAINING_TEMPLATES`, at least :data:`MIN_TRAINING_TEMPLATES`).
Removing templates rebuilds the codes without them (codes are decoded and
encoded again, which gives back the same codes), so no byte of an erased
template stays in memory or, once saved, in the file. Keys are template ids
(positive int64).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facelens.errors import GalleryError
from facelens.io.private_files import make_private_dir, open_private
from facelens.types import FloatArray

if TYPE_CHECKING:  # faiss is imported where it is used (13 MB of memory)
    import faiss

__all__ = ["MIN_TRAINING_TEMPLATES", "TRAINING_TEMPLATES", "CodeIndex"]

INDEX_FORMAT = 1
TRAINING_TEMPLATES = 65_536
"""Templates the centroids are learnt from, at most (a random sample of the first ones added)."""
MIN_TRAINING_TEMPLATES = 64
"""Templates needed to learn the centroids (16 per piece, with a few points each)."""
REBUILD_CHUNK = 100_000
"""Templates decoded at a time when rebuilding after a removal (bounds the memory it takes)."""


class CodeIndex:
    """Top-k search over templates of one dimension by scanning compact codes.

    Args:
        dimension: template length (128 for SFace, 256 for the default fusion); even.
        threads: threads FAISS may use for a batch of probes (one probe uses one).
    """

    def __init__(self, dimension: int, threads: int = 1) -> None:
        if dimension % 2:
            raise ValueError(f"the dimension must be even, not {dimension}")
        self.dimension = dimension
        self.threads = max(1, threads)
        self._codes: faiss.Index | None = None  # None until trained
        self._ids = np.zeros(0, np.int64)  # by position in the codes
        self._sorted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """The template ids held, sorted ``(N,)`` int64."""
        if self._sorted is None:
            self._sorted = np.sort(self._ids)
        return self._sorted

    @property
    def code_bytes(self) -> int:
        """Bytes of one template's code."""
        return self.dimension // 4

    def memory_bytes(self) -> int:
        """Bytes of the codes and ids held."""
        return len(self) * (self.code_bytes + 8)

    def add(self, ids: np.ndarray, vectors: FloatArray) -> None:
        """Insert templates ``vectors`` ``(N, D)`` under keys ``ids`` ``(N,)`` (new ids only)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, np.float32)
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(
                f"expected ({len(ids)}, {self.dimension}) vectors, got {vectors.shape}"
            )
        if np.isin(ids, self._ids).any() or len(np.unique(ids)) != len(ids):
            raise ValueError("an id is already in the index")
        if self._codes is None:
            self._codes = self._trained(vectors)
        self._codes.add(vectors)
        self._ids = np.concatenate([self._ids, ids])
        self._sorted = None

    def remove(self, ids: np.ndarray) -> int:
        """Delete the given ids (unknown ids are ignored); returns how many were removed."""
        import faiss  # imported on use (13 MB): most commands never search codes

        gone = np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        removed = int(gone.sum())
        if not removed:
            return 0
        assert self._codes is not None
        old, fresh = self._codes, faiss.clone_index(self._codes)
        fresh.reset()  # same centroids, no codes: the removed ones are never copied
        kept = np.flatnonzero(~gone)
        for start in range(0, len(kept), REBUILD_CHUNK):
            chunk = kept[start : start + REBUILD_CHUNK]
            fresh.add(_reconstruct_rows(old, chunk))
        self._codes, self._ids, self._sorted = fresh, self._ids[kept], None
        return removed

    def search(self, probes: FloatArray, k: int) -> tuple[np.ndarray, FloatArray]:
        """The ``k`` nearest templates of each probe row.

        Returns ``(ids, scores)``, both ``(P, k)``: template ids (``-1`` where
        fewer than ``k`` are held) and approximate cosine similarities, best first.
        """
        import faiss  # imported on use (13 MB): most commands never search codes

        probes = np.ascontiguousarray(np.atleast_2d(probes), np.float32)
        k = min(k, len(self))
        if k == 0 or len(probes) == 0 or self._codes is None:
            return np.full((len(probes), 0), -1, np.int64), np.zeros((len(probes), 0), np.float32)
        faiss.omp_set_num_threads(1 if len(probes) == 1 else self.threads)
        scores, positions = self._codes.search(probes, k)
        found = positions >= 0
        ids = np.where(found, self._ids[np.where(found, positions, 0)], -1)
        return ids.astype(np.int64), np.where(found, scores, -np.inf).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (one ``.npz`` file), atomically."""
        import faiss  # imported on use (13 MB): most commands never search codes

        make_private_dir(path.parent)
        temporary = path.with_name(path.name + ".tmp")
        codes = (
            faiss.serialize_index(self._codes) if self._codes is not None else np.zeros(0, np.uint8)
        )
        with open_private(temporary) as handle:  # mode 0600: codes are biometric data
            np.savez(
                handle,
                format=np.array(INDEX_FORMAT),
                dimension=np.array(self.dimension),
                codes=codes,
                ids=self._ids,
            )
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path, threads: int = 1) -> CodeIndex:
        """Read an index written by :meth:`save`; :class:`GalleryError` if damaged."""
        import faiss  # imported on use (13 MB): most commands never search codes

        try:
            with np.load(path) as stored:
                if int(stored["format"]) != INDEX_FORMAT:
                    raise ValueError(f"unknown index format {int(stored['format'])}")
                index = cls(int(stored["dimension"]), threads)
                codes, ids = stored["codes"], stored["ids"].astype(np.int64)
            if len(codes):
                index._codes = faiss.deserialize_index(codes)
        except (OSError, ValueError, KeyError, EOFError, RuntimeError) as exc:
            raise GalleryError(f"{path}: cannot read the search index ({exc})") from exc
        held = index._codes.ntotal if index._codes is not None else 0
        if held != len(ids) or (index._codes is not None and index._codes.d != index.dimension):
            raise GalleryError(f"{path}: the search index's codes and ids disagree")
        index._ids = ids
        return index

    def _trained(self, vectors: FloatArray) -> faiss.Index:
        import faiss  # imported on use (13 MB): most commands never search codes

        if len(vectors) < MIN_TRAINING_TEMPLATES:
            raise ValueError(
                f"the first templates added teach the index its codes: give at least "
                f"{MIN_TRAINING_TEMPLATES}, not {len(vectors)}"
            )
        codes = faiss.IndexPQFastScan(
            self.dimension, self.dimension // 2, 4, faiss.METRIC_INNER_PRODUCT
        )
        sample = vectors
        if len(vectors) > TRAINING_TEMPLATES:
            rng = np.random.default_rng(0)
            sample = vectors[np.sort(rng.choice(len(vectors), TRAINING_TEMPLATES, replace=False))]
        faiss.omp_set_num_threads(self.threads)
        codes.train(np.ascontiguousarray(sample))
        return codes


def _reconstruct_rows(codes: faiss.Index, rows: np.ndarray) -> FloatArray:
    """Decoded templates at ``rows`` (increasing positions), by runs of consecutive rows."""
    parts = []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for run in np.split(rows, breaks):
        parts.append(codes.reconstruct_n(int(run[0]), len(run)))
    return np.concatenate(parts).astype(np.float32)
