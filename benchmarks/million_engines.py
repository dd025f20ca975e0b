"""Which index for a million templates: FAISS inverted lists, sign codes, PQ fast scan.

    .venv/bin/python benchmarks/million.py --total 1000000 --engines codes-pq4   # makes the gallery
    .venv/bin/python benchmarks/million_engines.py

Runs on the gallery and probes that ``million.py`` left in its work folder
(1,000,000 templates, 801 real probes; see its docstring). For each
candidate engine: memory of its search structure, p50 of one query (one
probe at a time, the exact rescoring of the candidates from the in-memory
float32 templates included) and recall@1 against exact search. The engines:

* ``ivf-sq8``: FAISS inverted lists (4,096 k-means lists) over 8-bit scalar
  quantized vectors, ``nprobe`` lists scanned, top 128 rescored;
* ``sign-256``: 256-bit sign codes of the centred templates turned by a
  random rotation, scanned by FAISS's binary flat index in 2 shards on 2
  threads; the 2,000 nearest codes are rescored with int8 vectors, the best
  10 exactly;
* ``pq4-fastscan``: facelens's :class:`facelens.index.CodeIndex` (4-bit
  product quantization, FAISS fast scan), C candidates rescored.

Writes ``benchmarks/results/million_engines.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from facelens.index.codes import CodeIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from million import WORK, exact_search

OUT = Path(__file__).resolve().parent / "results" / "million_engines.json"


def timed(probes: np.ndarray, exact_top1: np.ndarray, query: Any) -> dict[str, float]:
    """p50/p99 of ``query(probe) -> best row`` over all probes (second pass), and recall@1."""
    latencies, found = [], []
    for repeat in range(2):
        for probe in probes:
            started = time.perf_counter()
            best = query(probe)
            if repeat:
                latencies.append(time.perf_counter() - started)
                found.append(best)
    milliseconds = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.median(milliseconds)), 3),
        "p99_ms": round(float(np.percentile(milliseconds, 99)), 3),
        "recall_at_1": round(float(np.mean(np.array(found) == exact_top1)), 4),
    }


def best_of(db: np.ndarray, rows: np.ndarray, probe: np.ndarray) -> int:
    rows = rows[rows >= 0]
    return int(rows[np.argmax(np.einsum("ij,j->i", db[rows], probe))])


def ivf(db: np.ndarray, probes: np.ndarray, top1: np.ndarray) -> list[dict[str, Any]]:
    faiss.omp_set_num_threads(2)
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(128), 128, 4096, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    sample = db[np.random.default_rng(0).choice(len(db), 409_600, replace=False)]
    started = time.perf_counter()
    index.train(sample)
    index.add(db)
    build = time.perf_counter() - started
    memory = len(faiss.serialize_index(index)) / 2**20
    faiss.omp_set_num_threads(1)
    rows = []
    for nprobe in (64, 256, 512):
        index.nprobe = nprobe
        result = timed(probes, top1, lambda p: best_of(db, index.search(p[None], 128)[1][0], p))
        rows.append(
            {
                "engine": "ivf-sq8",
                "setting": f"nprobe {nprobe}",
                "build_s": round(build, 1),
                "memory_mb": round(memory, 1),
                **result,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def sign_codes(db: np.ndarray, probes: np.ndarray, top1: np.ndarray) -> list[dict[str, Any]]:
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    rotation = np.concatenate(
        [np.linalg.qr(rng.standard_normal((128, 128)))[0] for _ in range(2)], axis=1
    ).astype(np.float32)
    centre = db.mean(axis=0)

    def codes(x: np.ndarray) -> np.ndarray:
        return np.packbits(((x - centre) @ rotation) > 0, axis=1)

    started = time.perf_counter()
    half = len(db) // 2
    shards = []
    for part in (slice(0, half), slice(half, len(db))):
        shard = faiss.IndexBinaryFlat(256)
        shard.use_heap = False
        shard.add(codes(db[part]))
        shards.append(shard)
    int8 = np.round(db * 127).astype(np.int8)
    build = time.perf_counter() - started
    pool = ThreadPoolExecutor(2)

    def query(probe: np.ndarray) -> int:
        code = codes(probe[None])
        found = list(pool.map(lambda s: s.search(code, 1000)[1][0], shards))
        rows = np.concatenate([found[0], found[1] + half])
        scores = np.einsum("ij,j->i", int8[rows].astype(np.float32), probe)
        return best_of(db, rows[np.argpartition(-scores, 10)[:10]], probe)

    memory = (len(db) * 32 + int8.nbytes) / 2**20
    result = timed(probes, top1, query)
    row = {
        "engine": "sign-256",
        "setting": "2 shards x 1,000 shortlisted",
        "build_s": round(build, 1),
        "memory_mb": round(memory, 1),
        **result,
    }
    print(json.dumps(row), flush=True)
    return [row]


def pq_fastscan(db: np.ndarray, probes: np.ndarray, top1: np.ndarray) -> list[dict[str, Any]]:
    index = CodeIndex(128, threads=2)
    started = time.perf_counter()
    index.add(np.arange(1, len(db) + 1), db)
    build = time.perf_counter() - started
    rows = []
    for candidates in (64, 128):

        def query(probe: np.ndarray, candidates: int = candidates) -> int:
            return best_of(db, index.search(probe[None], candidates)[0][0] - 1, probe)

        result = timed(probes, top1, query)
        rows.append(
            {
                "engine": "pq4-fastscan",
                "setting": f"C {candidates}",
                "build_s": round(build, 1),
                "memory_mb": round(index.memory_bytes() / 2**20, 1),
                **result,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    probes = np.load(WORK / "probes.npy")
    db = np.fromfile(WORK / "db.f32", np.float32).reshape(-1, probes.shape[1])
    top1 = exact_search(probes, db)[:, 0]
    load_before = os.getloadavg()
    rows = ivf(db, probes, top1) + sign_codes(db, probes, top1) + pq_fastscan(db, probes, top1)
    OUT.write_text(
        json.dumps(
            {
                "command": "benchmarks/million_engines.py",
                "templates": len(db),
                "probes": len(probes),
                "rows": rows,
                "load": [load_before, os.getloadavg()],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
