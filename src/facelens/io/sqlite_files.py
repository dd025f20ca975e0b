"""How facelens opens its SQLite files: the gallery, the cluster index, the scan index and
the service's state.

Every one of them is written by several threads and sometimes several processes at
once, and most hold face templates, so they share one set of settings:

* ``journal_mode=WAL``: readers never block the writer;
* ``synchronous=FULL``: a committed write survives a power cut;
* ``secure_delete=ON``: deleted rows are overwritten with zeros, so an erased
  template does not linger in free pages;
* ``foreign_keys=ON``: ``ON DELETE CASCADE`` really removes dependent rows;
* a 30 s busy timeout: a writer waits for another instead of failing at once.

The connection is in autocommit mode (``isolation_level=None``): callers open their
own ``BEGIN IMMEDIATE`` transactions, and share it between threads behind their own lock
(``check_same_thread=False``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30.0

_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=FULL",
    "secure_delete=ON",
    "foreign_keys=ON",
    f"busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}",
)


def open_sqlite_file(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` (created if missing) with the settings above.

    Raises ``sqlite3.DatabaseError`` when the file is not a SQLite database or is
    damaged; callers turn it into their own error, naming what the file should be.
    """
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    try:
        for pragma in _PRAGMAS:
            db.execute(f"PRAGMA {pragma}")
    except BaseException:
        db.close()
        raise
    return db
