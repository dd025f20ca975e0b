"""How facelens opens its SQLite files: the gallery, the cluster index, the scan index and
the service's state.

Every one of them is written by several threads and sometimes several processes at
once, and most hold face templates, so they share one set of settings:

* ``journal_mode=WAL``: readers never block the writer;
* ``synchronous=FULL``: a committed write survives a power cut;
* ``secure_delete=ON``: deleted rows are overwritten with zeros, so an erased
  template does not linger in free pages;
* ``foreign_keys=ON``: ``ON DELETE CASCADE`` really removes dependent rows;
* a 30 s busy timeout: a writer waits for another instead of failing at once;
* mode 0600 for the file and its ``-wal``/``-shm`` (see :mod:`facelens.io.private_files`).

The connection is in autocommit mode (``isolation_level=None``): callers open their
own ``BEGIN IMMEDIATE`` transactions, and share it between threads behind their own lock
(``check_same_thread=False``).

The kinds are told apart by the tables only one of them has, so that a file of one kind
is refused where another is expected before anything is written to it (:func:`other_kind`).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from facelens.io.private_files import create_private_file, warn_if_exposed

__all__ = ["open_sqlite_file", "other_kind"]

BUSY_TIMEOUT_SECONDS = 30.0

_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=FULL",
    "secure_delete=ON",
    "foreign_keys=ON",
    f"busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}",
)

_KIND_TABLES: dict[str, frozenset[str]] = {
    "gallery": frozenset({"people", "templates"}),
    "scan index": frozenset({"items"}),
    "library": frozenset({"photos", "groups"}),
    "service state": frozenset({"api_keys", "jobs"}),
}
"""Each kind of facelens file and the tables that it alone has, in every version that wrote
it (``meta``, ``faces`` and ``audit`` are shared by several kinds and tell nothing)."""


def open_sqlite_file(path: Path, what: str = "database") -> sqlite3.Connection:
    """A connection to ``path`` (created if missing) with the settings above.

    A new file is created mode 0600 first, so that SQLite gives its ``-wal`` and
    ``-shm`` files the same mode; an existing one that other users can open gets
    an :class:`~facelens.io.private_files.ExposedFileWarning` naming it as ``what``
    (e.g. "gallery").

    Raises ``sqlite3.DatabaseError`` when the file is not a SQLite database or is
    damaged; callers turn it into their own error, naming what the file should be.
    """
    try:
        created = create_private_file(path)
    except OSError:
        created = False  # e.g. no permission: SQLite's own error below says so
    if not created:
        warn_if_exposed(path, what)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    try:
        for pragma in _PRAGMAS:
            _execute_waiting(db, f"PRAGMA {pragma}")
    except BaseException:
        db.close()
        raise
    return db


def _execute_waiting(db: sqlite3.Connection, statement: str) -> None:
    """Run ``statement``, waiting up to the busy timeout while another connection holds a lock.

    Switching a new, empty file to WAL needs an exclusive lock, and SQLite answers
    "database is locked" at once (without its busy handler) while another process is
    switching or writing the same new file: several processes opening one new gallery at
    the same moment would fail. Retried here every 20 ms until the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            db.execute(statement)
            return
        except sqlite3.OperationalError as error:
            busy = "locked" in str(error) or "busy" in str(error)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def other_kind(db: sqlite3.Connection, kind: str) -> str | None:
    """The kind of facelens file ``db`` is when it is not a ``kind`` ("gallery", "scan index",
    "library" or "service state"): it has another kind's tables and none of ``kind``'s.

    None for a ``kind`` file (of any version), a new empty file, and a database of no
    known kind. Reads only the schema. Raises ``sqlite3.DatabaseError`` like
    :func:`open_sqlite_file`.
    """
    tables = {
        str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if tables & _KIND_TABLES[kind]:
        return None
    return next((other for other, own in _KIND_TABLES.items() if tables & own), None)
