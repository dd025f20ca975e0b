"""An approximate nearest-neighbour index of templates (HNSW graph, usearch).

Keys are template ids (positive int64); vectors are unit-norm float32 rows,
stored quantized (``i8`` by default: one byte per dimension, four times
smaller than float32) under the cosine metric. Scores returned are cosine
similarities of the *quantized* vectors: approximate, meant for choosing
candidates that are then scored exactly (see :mod:`facelens.index.search`).

usearch was chosen over hnswlib by measurement (benchmarks/million.py,
docs/benchmarks.md#million): at equal graph parameters hnswlib built and
searched a little faster, but it stores float32 only, which puts a million
128-dimensional templates far above the 300 MB budget; usearch stores int8
at half hnswlib's memory, for a 0.1-point loss in LFW pair accuracy.

Removing a template overwrites its slot, so no byte of an erased template
stays in memory or in the saved file (usearch alone only marks it deleted).

The ids held are kept beside the graph (``<path>.ids.npy``), so that the
index can be reconciled with its gallery without walking the graph.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facelens.errors import GalleryError
from facelens.io.private_files import (
    PRIVATE_FILE_MODE,
    create_private_file,
    make_private_dir,
    open_private,
    write_private_text,
)
from facelens.types import FloatArray

__all__ = ["AnnIndex", "AnnParameters", "index_files"]

Quantization = Literal["i8", "f16", "f32"]
INDEX_FORMAT = 1
_FILLER_KEYS = np.uint64(2**62)  # keys above every template id, for overwriting


@dataclass(frozen=True)
class AnnParameters:
    """HNSW parameters: graph degree ``connectivity`` (M), and the search
    breadth on insertion (``expansion_add``, efConstruction) and on query
    (``expansion_search``, ef). Defaults measured in docs/benchmarks.md."""

    quantization: Quantization = "i8"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64


class AnnIndex:
    """Approximate top-k search over templates of one dimension.

    Args:
        dimension: template length (128 for SFace).
        parameters: HNSW parameters and storage type.
        threads: threads used by ``add`` and batched ``search`` (0 = every core).
    """

    def __init__(
        self, dimension: int, parameters: AnnParameters | None = None, threads: int = 0
    ) -> None:
        self.dimension = dimension
        self.parameters = parameters or AnnParameters()
        self.threads = threads
        from usearch.index import Index  # imported on use: most commands never build one

        self._index = Index(
            ndim=dimension,
            metric="cos",
            dtype=self.parameters.quantization,
            connectivity=self.parameters.connectivity,
            expansion_add=self.parameters.expansion_add,
            expansion_search=self.parameters.expansion_search,
        )
        self._ids = np.zeros(0, dtype=np.int64)  # sorted

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """The template ids held, sorted ``(N,)`` int64."""
        return self._ids

    @property
    def expansion_search(self) -> int:
        return int(self._index.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._index.expansion_search = value  # type: ignore[misc]  # usearch has a setter

    def memory_bytes(self) -> int:
        """Bytes the graph and its vectors take in memory (usearch's own count)."""
        return int(self._index.memory_usage)

    def add(self, ids: np.ndarray, vectors: FloatArray) -> None:
        """Insert templates ``vectors`` ``(N, D)`` under keys ``ids`` ``(N,)`` (new ids only)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(
                f"expected ({len(ids)}, {self.dimension}) vectors, got {vectors.shape}"
            )
        if np.isin(ids, self._ids).any() or len(np.unique(ids)) != len(ids):
            raise ValueError("an id is already in the index")
        self._index.add(
            ids.astype(np.uint64), np.ascontiguousarray(vectors, np.float32), threads=self.threads
        )
        self._ids = np.union1d(self._ids, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Delete the given ids (unknown ids are ignored); returns how many were removed."""
        ids = np.intersect1d(np.asarray(ids, dtype=np.int64), self._ids)
        if len(ids) == 0:
            return 0
        self._index.remove(ids.astype(np.uint64))
        self._ids = np.setdiff1d(self._ids, ids, assume_unique=True)
        self._overwrite_freed_slots(len(ids))
        return len(ids)

    def _overwrite_freed_slots(self, count: int) -> None:
        """Leave no byte of removed templates in the graph (and so in the saved file).

        usearch only marks a removed entry deleted; its vector stays in its
        slot until the slot is reused. Filling the freed slots with a constant
        vector under reserved keys, then removing those, overwrites them.
        """
        filler = np.zeros((count, self.dimension), np.float32)
        filler[:, 0] = 1.0
        keys = (np.arange(count, dtype=np.uint64) + _FILLER_KEYS).astype(np.uint64)
        self._index.add(keys, filler, threads=self.threads)
        self._index.remove(keys)

    def search(self, probes: FloatArray, k: int) -> tuple[np.ndarray, FloatArray]:
        """The ``k`` nearest templates of each probe row.

        Returns ``(ids, scores)``, both ``(P, k)``: template ids (``-1`` where
        fewer than ``k`` were found) and approximate cosine similarities,
        best first.
        """
        probes = np.ascontiguousarray(np.atleast_2d(probes), np.float32)
        k = min(k, len(self))
        if k == 0 or len(probes) == 0:
            return np.full((len(probes), 0), -1, np.int64), np.zeros((len(probes), 0), np.float32)
        matches = self._index.search(probes, k, threads=self.threads)
        if hasattr(matches, "counts"):  # a batch of several probes
            keys = np.asarray(matches.keys).reshape(len(probes), -1)
            distances = np.asarray(matches.distances, dtype=np.float32).reshape(len(probes), -1)
            counts = np.asarray(matches.counts).reshape(len(probes))
        else:  # one probe: only the matches found come back
            keys = np.asarray(matches.keys)[None, :]
            distances = np.asarray(matches.distances, dtype=np.float32)[None, :]
            counts = np.array([keys.shape[1]])
        found = np.arange(keys.shape[1])[None, :] < counts[:, None]
        ids = np.where(found, keys.astype(np.int64), -1)
        scores = np.full(distances.shape, -np.inf, dtype=np.float32)
        scores[found] = 1.0 - distances[found]  # slots past a probe's count hold garbage
        return ids, scores

    def save(self, path: Path) -> None:
        """Write the graph to ``path`` and the ids and parameters beside it, atomically."""
        make_private_dir(path.parent)
        temporary = path.with_name(path.name + ".tmp")
        create_private_file(temporary)  # mode 0600 (the library keeps it when it writes)
        self._index.save(str(temporary))
        os.chmod(temporary, PRIVATE_FILE_MODE)
        ids_path = _ids_path(path)
        with open_private(ids_path.with_name(ids_path.name + ".tmp")) as handle:
            np.save(handle, self._ids)
        meta = {
            "format": INDEX_FORMAT,
            "dimension": self.dimension,
            "count": len(self),
            **self.parameters.__dict__,
        }
        write_private_text(
            _meta_path(path).with_name(_meta_path(path).name + ".tmp"), json.dumps(meta)
        )
        os.replace(temporary, path)
        os.replace(ids_path.with_name(ids_path.name + ".tmp"), ids_path)
        os.replace(_meta_path(path).with_name(_meta_path(path).name + ".tmp"), _meta_path(path))

    @classmethod
    def load(cls, path: Path, threads: int = 0) -> AnnIndex:
        """Read an index written by :meth:`save`; :class:`GalleryError` if damaged."""
        try:
            meta = json.loads(_meta_path(path).read_text())
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"unknown index format {meta.get('format')}")
            parameters = AnnParameters(
                meta["quantization"],
                int(meta["connectivity"]),
                int(meta["expansion_add"]),
                int(meta["expansion_search"]),
            )
            index = cls(int(meta["dimension"]), parameters, threads)
            index._index.load(str(path))
            index._ids = np.load(_ids_path(path))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise GalleryError(f"{path}: cannot read the search index ({exc})") from exc
        if len(index._ids) != len(index._index):
            raise GalleryError(f"{path}: the search index and its id list disagree")
        return index


def _ids_path(path: Path) -> Path:
    return path.with_name(path.name + ".ids.npy")


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def index_files(path: Path) -> list[Path]:
    """Every file an index saved at ``path`` consists of."""
    return [path, _ids_path(path), _meta_path(path)]
