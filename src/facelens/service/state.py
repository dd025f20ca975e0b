"""The service's own SQLite file (``service.db``): API keys, audit log, jobs.

Separate from the gallery so that neither key hashes nor the audit trail ever
mix with biometric data, and so an erase in the gallery never touches them.
WAL mode, ``synchronous=FULL``, one ``BEGIN IMMEDIATE`` per write: several
worker processes share it safely and a crash loses no acknowledged write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facelens.errors import GalleryError
from facelens.io.private_files import make_private_dir
from facelens.io.sqlite_files import open_sqlite_file, other_kind

__all__ = ["StateDB"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    key_id TEXT,
    key_name TEXT,
    role TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit(at);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    input_name TEXT NOT NULL,
    key_id TEXT,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    heartbeat REAL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created_at);
"""


class StateDB:
    """A thread-safe connection to ``service.db`` (created with its folder if missing).

    A gallery, library or scan index found at that path is refused
    (:class:`GalleryError`) and left as it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        make_private_dir(path.parent)
        try:
            self._db = open_sqlite_file(path, "service state")
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{path}: not a facelens service file or damaged ({exc})") from exc
        kind = other_kind(self._db, "service state")
        if kind is not None:  # refused before the schema below writes a table into it
            self._db.close()
            raise GalleryError(
                f"{path} is a facelens {kind}, not a service state: give the service a "
                "folder of its own (--service-dir), or the gallery as --gallery"
            )
        self._lock = threading.RLock()
        with self.write() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), retried while another process holds it."""
        with self._lock:
            for attempt in range(100):
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:
                    if attempt == 99:
                        raise
                    time.sleep(0.05)
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def scrub(self) -> None:
        """Leave no old bytes of overwritten rows: vacuum, then empty the WAL (as the gallery
        does after an erase; ``secure_delete`` already zeroes freed space)."""
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()
