"""Search at a million templates: facelens's code index against HNSW graphs and exact search.

Engines: ``codes-pq4`` (facelens's default, :class:`facelens.index.CodeIndex`:
a FAISS fast scan over 4-bit product-quantization codes of every template),
``usearch-i8`` (:class:`facelens.index.AnnIndex`, an HNSW graph over int8
vectors) and ``hnswlib-f32`` (an HNSW graph over float32 vectors).

The gallery: every LFW template of the development people (SFace, cached by
``lfw_templates.py``) except one probe per person with 2+ photos, plus
synthetic distractors up to ``--total`` (1,000,000). Distractors are drawn
from the real templates' distribution with identity structure: a synthetic
person's centre is drawn from a Gaussian fitted to the real people's mean
templates, and each of their templates adds within-person noise drawn from a
Gaussian fitted to the real templates' deviations from their person's mean;
then normalised. The script prints how their score statistics compare with
the real ones.

For each engine: build time (2 threads), disk, memory (RSS of a fresh
process that loads the index, minus the same process before loading),
p50/p99 latency of one top-10 query (one probe at a time, one thread):
index query for C candidates, then exact rescoring of those from the float32
templates read from disk (``pread``; they are not held in memory), and
recall@1 against exact search over all templates on the real probes, with
and without the rescoring. Also the rank-1 identification accuracy of the
real probes in the million (is the top-1 the probe's own person?), exact vs
each engine, and the LFW 10-fold pair accuracy with templates quantized the
way each engine stores them: the cost of quantization in accuracy.
Finally exact search latency at several gallery sizes against the index's,
which sets the size from which facelens uses the index.

    .venv/bin/python benchmarks/million.py [--total 1000000] [--engines usearch-i8,hnswlib-f32]

Writes ``benchmarks/results/million.json`` and prints Markdown for
docs/benchmarks.md. The machine's load average is recorded: on a shared
machine latencies are noisy; rerun on a quiet one.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from facelens.evaluation.lfw import evaluate_pairs, people_images, read_pairs, read_people
from facelens.index.ann import AnnIndex, AnnParameters, index_files
from facelens.index.codes import CodeIndex
from facelens.vectors import unit_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lfw_templates import CACHE, lfw_templates, source_digest

REPO = Path(__file__).resolve().parent.parent
WORK = CACHE / "million"
TOP = 10
CANDIDATE_GRID = (64, 128, 256, 512)
EXACT_SIZES = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument(
        "--embedder", default="sface-2021dec-int8bq", help="whose LFW templates (128-d SFace)"
    )
    parser.add_argument("--engines", default="codes-pq4,usearch-i8,hnswlib-f32")
    parser.add_argument("--connectivity", type=int, default=16)
    parser.add_argument("--expansion-add", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-crossover", action="store_true")
    parser.add_argument(
        "--crossover-only",
        action="store_true",
        help="only the exact-vs-index latency by gallery size, on the gallery of the last run",
    )
    parser.add_argument("--candidates", type=int, default=256, help="for the crossover")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/million.json")
    parser.add_argument("--serve", nargs=4, metavar=("ENGINE", "INDEX", "DB", "PROBES"))
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    started = time.time()
    load_before = os.getloadavg()
    if args.crossover_only:
        probes = np.load(WORK / "probes.npy")
        db = np.fromfile(WORK / "db.f32", np.float32).reshape(-1, probes.shape[1])
        rows = crossover(db, probes, args)
        out = args.out.with_name("million_crossover.json")
        out.write_text(
            json.dumps(
                {
                    "command": "benchmarks/million.py " + " ".join(sys.argv[1:]),
                    "candidates": args.candidates,
                    "rows": rows,
                    "load": [load_before, os.getloadavg()],
                },
                indent=2,
            )
        )
        print(json.dumps(rows))
        return 0
    real = load_real(args.data, args.embedder)
    work = WORK if args.total == 1_000_000 else WORK / str(args.total)  # keep the million's
    probes, db_real, db_person, probe_person = split(real)
    distractors, stats = synthesize(real, args.total - len(db_real), seed=0)
    print(f"distractor check: {json.dumps(stats)}", file=sys.stderr)
    person = np.concatenate([db_person, np.full(len(distractors), -1)])
    db = np.concatenate([db_real, distractors])
    del distractors
    work.mkdir(parents=True, exist_ok=True)
    db_file, probe_file = work / "db.f32", work / "probes.npy"
    db.tofile(db_file)
    np.save(probe_file, probes)
    exact_rows = exact_search(probes, db)
    exact_rank1 = float(np.mean(person[exact_rows[:, 0]] == probe_person))
    result: dict[str, Any] = {
        "command": "benchmarks/million.py " + " ".join(sys.argv[1:]),
        "templates": len(db),
        "real_templates": len(db_real),
        "probes": len(probes),
        "dimension": int(db.shape[1]),
        "embedder": args.embedder,
        "distractors": stats,
        "exact_rank1": exact_rank1,
        "engines": [],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
        },
    }
    for engine in args.engines.split(","):
        gc.collect()
        row = run_engine(engine, db, db_file, probe_file, exact_rows, person, probe_person, args)
        row["lfw_pairs"] = quantized_pair_accuracy(args.data, real, engine)
        print(json.dumps(row), file=sys.stderr)
        result["engines"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))  # kept as each engine finishes
    if not args.skip_crossover:
        result["crossover"] = crossover(db, probes, args)
    result["machine"]["load_after"] = os.getloadavg()
    result["seconds"] = round(time.time() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


class Real:
    """The LFW templates with their person index and paths (lfw_templates order)."""

    def __init__(self, vectors: np.ndarray, person: np.ndarray, paths: list[str]) -> None:
        self.vectors, self.person, self.paths = vectors, person, paths


def load_real(data: Path, embedder: str) -> Real:
    """LFW templates from the cache of lfw_templates.py (the newest one when the source
    digest moved on while other code changed: the pipeline's templates are the same)."""
    root = data / "lfw"
    items = [
        str(path)
        for group in read_people(root / "people.txt")
        for _, path in people_images(root / "images_deepfunneled", group)
    ]
    current = CACHE / f"{embedder}-{source_digest()}.npz"
    cached = sorted(CACHE.glob(f"{embedder}-*.npz"), key=lambda p: p.stat().st_mtime)
    if current.exists() or not cached:
        templates = lfw_templates(data, embedder)
        return Real(templates.vectors.astype(np.float32), templates.person, items)
    print(f"using cached templates {cached[-1].name}", file=sys.stderr)
    vectors = np.load(cached[-1])["vectors"].astype(np.float32)
    names = sorted({Path(p).parent.name for p in items})
    person = np.array([names.index(Path(p).parent.name) for p in items])
    return Real(vectors, person, items)


def split(real: Real) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One probe (the first photo) per person with 2+ photos; everything else to the gallery."""
    first: dict[int, int] = {}
    counts = np.bincount(real.person)
    for row, person in enumerate(real.person):
        if counts[person] >= 2 and person not in first:
            first[int(person)] = row
    probe_rows = np.array(sorted(first.values()))
    mask = np.ones(len(real.person), bool)
    mask[probe_rows] = False
    return (
        real.vectors[probe_rows],
        real.vectors[mask],
        real.person[mask],
        real.person[probe_rows],
    )


def synthesize(real: Real, count: int, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """``count`` unit templates from Gaussians fitted to the real people (see the docstring)."""
    rng = np.random.default_rng(seed)
    people = np.unique(real.person)
    means = np.stack([real.vectors[real.person == p].mean(axis=0) for p in people])
    deviations = real.vectors - means[np.searchsorted(people, real.person)]
    several = np.bincount(real.person)[real.person] >= 2
    between = np.cov(means, rowvar=False)
    within = np.cov(deviations[several], rowvar=False) * _unbias(real.person[several])
    per_person = max(1, round(len(real.vectors) / len(people)))
    centres = rng.multivariate_normal(means.mean(axis=0), between, size=count // per_person + 1)
    owner = np.repeat(np.arange(len(centres)), per_person)[:count]
    synthetic = np.empty((count, means.shape[1]), np.float32)
    for start in range(0, count, 100_000):  # in chunks: the machine's memory is shared
        stop = min(count, start + 100_000)
        noise = rng.multivariate_normal(np.zeros(means.shape[1]), within, size=stop - start)
        synthetic[start:stop] = unit_rows(centres[owner[start:stop]] + noise)
    stats = _compare(real, synthetic, owner, rng)
    return synthetic, stats


def _unbias(person: np.ndarray) -> float:
    """Deviations from a sample mean of n photos are shrunk by (n-1)/n: undo it on average."""
    counts = np.bincount(person)[person]
    return float(np.mean(counts / np.maximum(counts - 1, 1)))


def _compare(
    real: Real, synthetic: np.ndarray, owner: np.ndarray, rng: np.random.Generator
) -> dict[str, float]:
    """Mean and spread of cross-person and same-person cosines, real vs synthetic."""

    def pairs(vectors: np.ndarray, labels: np.ndarray, same: bool) -> np.ndarray:
        a, b = rng.integers(0, len(vectors), (2, 400_000))
        keep = (labels[a] == labels[b]) == same
        keep &= a != b
        return np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]])

    sample = synthetic[:50_000]
    sample_owner = owner[:50_000]
    real_cross, syn_cross = (
        pairs(real.vectors, real.person, False),
        pairs(sample, sample_owner, False),
    )
    real_same = np.concatenate(
        [
            real.vectors[real.person == p] @ real.vectors[real.person == p].T
            for p in np.unique(real.person)[:400]
        ],
        axis=None,
    )
    real_same = real_same[real_same < 0.9999]
    syn_same = np.einsum("ij,ij->i", sample[:-1:2], sample[1::2])[
        sample_owner[:-1:2] == sample_owner[1::2]
    ]
    return {
        "real_cross_mean": round(float(real_cross.mean()), 4),
        "real_cross_std": round(float(real_cross.std()), 4),
        "synthetic_cross_mean": round(float(syn_cross.mean()), 4),
        "synthetic_cross_std": round(float(syn_cross.std()), 4),
        "real_same_mean": round(float(real_same.mean()), 4),
        "synthetic_same_mean": round(float(syn_same.mean()), 4),
    }


def exact_search(probes: np.ndarray, db: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Exact top-10 rows of every probe over the whole gallery, by cosine."""
    best_rows = np.zeros((len(probes), 0), np.int64)
    best_scores = np.zeros((len(probes), 0), np.float32)
    for start in range(0, len(db), chunk):
        scores = probes @ db[start : start + chunk].T
        part = np.argpartition(-scores, TOP - 1, axis=1)[:, :TOP]
        best_rows = np.concatenate([best_rows, part + start], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, 1)], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :TOP]
        best_rows = np.take_along_axis(best_rows, keep, 1)
        best_scores = np.take_along_axis(best_scores, keep, 1)
    return best_rows


def build(engine: str, db: np.ndarray, args: argparse.Namespace, work: Path) -> tuple[Path, float]:
    """Build ``engine``'s index over ``db`` (key = row + 1), save it, return path and seconds."""
    kind, storage = engine.split("-")
    path = work / f"{engine}-{len(db)}.index"
    started = time.perf_counter()
    if kind == "usearch":
        index = AnnIndex(
            db.shape[1],
            AnnParameters(storage, args.connectivity, args.expansion_add, 64),  # type: ignore[arg-type]
            threads=args.threads,
        )
        index.add(np.arange(1, len(db) + 1), db)
        seconds = time.perf_counter() - started
        index.save(path)
    elif kind == "codes":
        codes = CodeIndex(db.shape[1], threads=args.threads)
        codes.add(np.arange(1, len(db) + 1), db)
        seconds = time.perf_counter() - started
        path = path.with_suffix(".npz")
        codes.save(path)
    elif kind == "hnswlib":
        import hnswlib

        hnsw = hnswlib.Index(space="cosine", dim=db.shape[1])
        hnsw.init_index(len(db), M=args.connectivity, ef_construction=args.expansion_add)
        hnsw.add_items(db, np.arange(1, len(db) + 1), num_threads=args.threads)
        seconds = time.perf_counter() - started
        hnsw.save_index(str(path))
    else:
        raise SystemExit(f"unknown engine {engine}")
    return path, seconds


def run_engine(
    engine: str,
    db: np.ndarray,
    db_file: Path,
    probe_file: Path,
    exact_rows: np.ndarray,
    person: np.ndarray,
    probe_person: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Build, then serve in a fresh process; recall and accuracy against exact search."""
    path, build_seconds = build(engine, db, args, db_file.parent)
    gc.collect()
    files = [path] if engine.startswith("codes") else index_files(path)
    disk = sum(f.stat().st_size for f in files if f.exists())
    output = subprocess.run(
        [sys.executable, __file__, "--serve", engine, str(path), str(db_file), str(probe_file)],
        capture_output=True,
        text=True,
    )
    if output.returncode:
        raise SystemExit(f"serving {engine} failed:\n{output.stderr}")
    served = json.loads(output.stdout)
    settings = []
    for setting in served["settings"]:
        ann = np.array(setting.pop("ann_top1"))
        rescored = np.array(setting.pop("rescored_top1"))
        setting["recall_at_1_raw"] = float(np.mean(ann == exact_rows[:, 0]))
        setting["recall_at_1"] = float(np.mean(rescored == exact_rows[:, 0]))
        setting["rank1_accuracy"] = float(np.mean(person[rescored] == probe_person))
        settings.append(setting)
    return {
        "engine": engine,
        "build_seconds": round(build_seconds, 1),
        "disk_mb": round(disk / 2**20, 1),
        "rss_mb": served["rss_mb"],
        "process_rss_mb": served["process_rss_mb"],
        "connectivity": args.connectivity,
        "expansion_add": args.expansion_add,
        "settings": settings,
    }


def serve(engine: str, index_path: str, db_path: str, probe_path: str) -> None:
    """(Child process) load the index, measure its memory, time one query at a time."""
    probes = np.load(probe_path)
    kind, _ = engine.split("-")
    before = _rss_mb()
    if kind == "usearch":
        index = AnnIndex.load(Path(index_path), threads=1)
    elif kind == "codes":
        codes = CodeIndex.load(Path(index_path))
    else:
        import hnswlib

        hnsw = hnswlib.Index(space="cosine", dim=probes.shape[1])
        hnsw.load_index(index_path)
        hnsw.set_num_threads(1)
    rss = _rss_mb() - before
    dimension = probes.shape[1]
    row_bytes = dimension * 4
    db_handle = os.open(db_path, os.O_RDONLY)
    settings = []
    for candidates in CANDIDATE_GRID:
        ann_top1, rescored_top1, latencies = [], [], []
        for repeat in range(2):  # the first pass warms the caches and is not timed
            for probe in probes:
                started = time.perf_counter()
                if kind == "usearch":
                    index.expansion_search = candidates
                    ids, _ = index.search(probe[None, :], candidates)
                    rows = ids[0][ids[0] > 0] - 1
                elif kind == "codes":
                    ids, _ = codes.search(probe[None, :], candidates)
                    rows = ids[0][ids[0] > 0] - 1
                else:
                    hnsw.set_ef(candidates)
                    labels, _ = hnsw.knn_query(probe[None, :], k=candidates)
                    rows = labels[0].astype(np.int64) - 1
                vectors = np.frombuffer(
                    b"".join(os.pread(db_handle, row_bytes, int(r) * row_bytes) for r in rows),
                    dtype=np.float32,
                ).reshape(len(rows), dimension)
                exact = vectors @ probe
                top = rows[np.argsort(-exact, kind="stable")[:TOP]]
                elapsed = time.perf_counter() - started
                if repeat:
                    latencies.append(elapsed)
                    ann_top1.append(int(rows[0]))
                    rescored_top1.append(int(top[0]))
        milliseconds = np.array(latencies) * 1000
        settings.append(
            {
                "candidates": candidates,
                "p50_ms": round(float(np.percentile(milliseconds, 50)), 3),
                "p99_ms": round(float(np.percentile(milliseconds, 99)), 3),
                "ann_top1": ann_top1,
                "rescored_top1": rescored_top1,
            }
        )
    print(
        json.dumps(
            {"rss_mb": round(rss, 1), "process_rss_mb": round(_rss_mb(), 1), "settings": settings}
        )
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def quantized_pair_accuracy(data: Path, real: Real, engine: str) -> dict[str, float]:
    """LFW 10-fold pair accuracy with float32 templates and with the engine's stored ones."""
    folds = read_pairs(data / "lfw/pairs.txt")
    images = data / "lfw/images_deepfunneled"
    exact = dict(zip(real.paths, real.vectors, strict=True))
    storage = engine.split("-")[1]
    if storage == "f32":
        stored = real.vectors
    elif storage == "pq4":  # the templates as the codes describe them (decoded)
        codes = CodeIndex(real.vectors.shape[1])
        codes.add(np.arange(1, len(real.vectors) + 1), real.vectors)
        assert codes._codes is not None
        raw = codes._codes.reconstruct_n(0, len(real.vectors))
        stored = unit_rows(np.asarray(raw, dtype=np.float64)).astype(np.float32)
    else:
        index = AnnIndex(real.vectors.shape[1], AnnParameters(storage))  # type: ignore[arg-type]
        index.add(np.arange(1, len(real.vectors) + 1), real.vectors)
        raw = index._index.get(np.arange(1, len(real.vectors) + 1, dtype=np.uint64))
        stored = unit_rows(np.asarray(raw, dtype=np.float64)).astype(np.float32)
    quantized = dict(zip(real.paths, stored, strict=True))
    float_accuracy = float(np.mean(evaluate_pairs(folds, images, exact)[0]))
    stored_accuracy = float(np.mean(evaluate_pairs(folds, images, quantized)[0]))
    return {"float32": round(float_accuracy, 5), storage: round(stored_accuracy, 5)}


def crossover(db: np.ndarray, probes: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    """p50 of one exact query vs one query of facelens's index (``--candidates``, rescored)
    by gallery size."""
    from threadpoolctl import threadpool_limits

    rows = []
    threadpool_limits(1)  # one query on one core, as the index query; see docs/benchmarks.md
    for size in EXACT_SIZES:
        sub = np.ascontiguousarray(db[:size])
        exact_ms = []
        for probe in probes[:200]:
            started = time.perf_counter()
            scores = sub @ probe
            np.argpartition(-scores, TOP)[:TOP]
            exact_ms.append((time.perf_counter() - started) * 1000)
        index = CodeIndex(sub.shape[1])
        index.add(np.arange(1, size + 1), sub)
        ann_ms = []
        for probe in probes[:200]:
            started = time.perf_counter()
            ids, _ = index.search(probe[None, :], args.candidates)
            sub[ids[0][ids[0] > 0] - 1] @ probe
            ann_ms.append((time.perf_counter() - started) * 1000)
        rows.append(
            {
                "templates": size,
                "exact_p50_ms": round(float(np.median(exact_ms)), 3),
                "index_p50_ms": round(float(np.median(ann_ms)), 3),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['templates']:,} templates ({result['real_templates']:,} real LFW, the rest "
        f"synthetic), {result['probes']} real probes, {result['dimension']}-d "
        f"{result['embedder']}; exact search puts the probe's own person first for "
        f"{result['exact_rank1']:.1%} of them.",
        "",
        "| engine | build s | disk MB | memory MB | candidates | p50 ms | p99 ms | recall@1 "
        "(raw) | recall@1 (rescored) | rank-1 | LFW pairs float32 -> stored |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["engines"]:
        pairs = " -> ".join(f"{v:.2%}" for v in row["lfw_pairs"].values())
        for s in row["settings"]:
            lines.append(
                f"| {row['engine']} | {row['build_seconds']} | {row['disk_mb']} | {row['rss_mb']} "
                f"| {s['candidates']} | {s['p50_ms']} | {s['p99_ms']} | {s['recall_at_1_raw']:.4f} "
                f"| {s['recall_at_1']:.4f} | {s['rank1_accuracy']:.2%} | {pairs} |"
            )
    if "crossover" in result:
        lines += ["", "| templates | exact p50 ms | index p50 ms |", "|---|---|---|"]
        lines += [
            f"| {r['templates']:,} | {r['exact_p50_ms']} | {r.get('index_p50_ms', '')} |"
            for r in result["crossover"]
        ]
    machine = result["machine"]
    lines += [
        "",
        f"Load average before {machine['load_before']}, after {machine['load_after']} "
        f"({machine['cpus']} cores); {result['seconds']} s in all.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
