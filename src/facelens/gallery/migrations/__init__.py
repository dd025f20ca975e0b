"""Versioned schema migrations of the PostgreSQL gallery, applied on open.

Each migration is one file ``NNNN_name.sql`` in this folder; its version is
``NNNN``. :func:`apply_migrations` runs the missing ones in order, each in the
same transaction as the row that records it in ``facelens.schema_migrations``,
so a migration is applied completely or not at all. The whole run holds a
transaction-scoped advisory lock: processes that open the same database at
once take turns, and the second finds the work done (idempotent).

A migration is never edited once released; a change to the schema is a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

__all__ = ["all_migrations", "apply_migrations"]

# Arbitrary 64-bit key of the advisory lock that serialises migrations ("facelens" in ASCII).
MIGRATION_LOCK_KEY = 0x666163656C656E73

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema step: its version number, name and SQL text."""

    version: int
    name: str
    sql: str


def all_migrations() -> list[Migration]:
    """Every migration shipped with facelens, oldest first."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"gallery migrations must be numbered 1, 2, 3, ...: found {versions}")
    return found


def latest_version() -> int:
    """The schema version this facelens writes."""
    return len(all_migrations())


def apply_migrations(connection: psycopg.Connection[Any]) -> list[int]:
    """Bring the ``facelens`` schema of ``connection``'s database up to date.

    Returns the versions applied now (empty when it already was up to date).
    Raises :class:`RuntimeError` when the database is newer than this facelens.
    """
    applied_now = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        connection.execute("CREATE SCHEMA IF NOT EXISTS facelens")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS facelens.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = connection.execute("SELECT version FROM facelens.schema_migrations").fetchall()
        done = {int(row[0]) for row in rows}
        migrations = all_migrations()
        if done and max(done) > len(migrations):
            raise RuntimeError(
                f"the gallery database has schema version {max(done)}, newer than this facelens "
                f"({len(migrations)}); upgrade facelens"
            )
        for migration in migrations:
            if migration.version in done:
                continue
            with connection.transaction():  # a savepoint: the step and its record together
                connection.execute(migration.sql.encode())
                connection.execute(
                    "INSERT INTO facelens.schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied_now.append(migration.version)
    return applied_now
