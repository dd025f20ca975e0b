"""The embedded gallery: one SQLite file in WAL mode.

* Every write is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers
  (threads or processes) queue instead of interleaving, and a crash leaves
  either all of an enrollment or none of it.
* ``secure_delete`` is on, so deleted rows are overwritten with zeros; after
  an erase the WAL is checkpointed and truncated, and the file is vacuumed,
  so no byte of the erased person (name, templates, crops) remains in it.
* The gallery records the embedder that made its templates; opening it with
  another embedder raises :class:`GalleryModelMismatchError`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from facelens.errors import (
    GalleryError,
    GalleryModelMismatchError,
    PersonExistsError,
    PersonNotFoundError,
    TemplateNotFoundError,
)
from facelens.gallery.store import NewTemplate, TemplateMatrix
from facelens.types import Person, StoredTemplate

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    vector BLOB NOT NULL,
    crop BLOB,
    source TEXT NOT NULL,
    quality REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_by_person ON templates(person_id);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteGallery:
    """People and their templates in one SQLite file; see the module docstring.

    Args:
        path: the database file (created with its folder if missing).
        model_id: the embedder whose templates this gallery holds.
    """

    def __init__(self, path: str | Path, model_id: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path}: not a facelens gallery or damaged ({exc})") from exc
        self._lock = threading.RLock()
        self._cache: TemplateMatrix | None = None
        self._cache_version: tuple[int, int] | None = None
        self._local_writes = 0
        self._model_id = self._initialise(model_id)

    @property
    def model_id(self) -> str:
        return self._model_id

    def _initialise(self, model_id: str) -> str:
        with self._write() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('model_id', ?)", (model_id,))
            stored = db.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()[0]
        if stored != model_id:
            raise GalleryModelMismatchError(
                f"{self.path} holds templates made by {stored}, but this facelens embeds with "
                f"{model_id}; templates of different models cannot be compared. Open it with "
                f"the model {stored}, or enroll the people again into a new gallery"
            )
        return str(stored)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading so writers never deadlock."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise GalleryError(f"{self.path}: cannot write ({exc})") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
                self._local_writes += 1

    def _person_row(self, db: sqlite3.Connection, name: str) -> tuple[int, str, str]:
        row = db.execute(
            "SELECT id, name, created_at FROM people WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise PersonNotFoundError(f"nobody called {name!r} is in the gallery")
        return int(row[0]), str(row[1]), str(row[2])

    def _person(self, db: sqlite3.Connection, name: str) -> Person:
        person_id, stored_name, created = self._person_row(db, name)
        count = db.execute(
            "SELECT COUNT(*) FROM templates WHERE person_id = ?", (person_id,)
        ).fetchone()[0]
        return Person(person_id, stored_name, int(count), created)

    def add_person(self, name: str) -> Person:
        """A new person with no template yet."""
        name = _clean_name(name)
        with self._write() as db:
            try:
                db.execute("INSERT INTO people (name, created_at) VALUES (?, ?)", (name, _now()))
            except sqlite3.IntegrityError:
                raise PersonExistsError(f"{name!r} is already in the gallery") from None
            return self._person(db, name)

    def get_person(self, name: str) -> Person:
        with self._lock:
            return self._person(self._db, name)

    def list_people(self) -> list[Person]:
        """Everyone, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.id, p.name, p.created_at, COUNT(t.id) FROM people p "
                "LEFT JOIN templates t ON t.person_id = p.id GROUP BY p.id ORDER BY p.name"
            ).fetchall()
        return [Person(int(r[0]), str(r[1]), int(r[3]), str(r[2])) for r in rows]

    def rename_person(self, old: str, new: str) -> Person:
        new = _clean_name(new)
        with self._write() as db:
            person_id = self._person_row(db, old)[0]
            try:
                db.execute("UPDATE people SET name = ? WHERE id = ?", (new, person_id))
            except sqlite3.IntegrityError:
                raise PersonExistsError(f"{new!r} is already in the gallery") from None
            person = self._person(db, new)
        self._scrub()
        return person

    def erase_person(self, name: str) -> int:
        """Delete a person and every template and crop of theirs; returns templates removed.

        Afterwards the file holds no byte of them (see the module docstring).
        """
        with self._write() as db:
            person_id = self._person_row(db, name)[0]
            removed = db.execute("DELETE FROM templates WHERE person_id = ?", (person_id,)).rowcount
            db.execute("DELETE FROM people WHERE id = ?", (person_id,))
        self._scrub()
        return int(removed)

    def add_templates(
        self, name: str, templates: list[NewTemplate], *, create: bool = False
    ) -> list[int]:
        """Store templates for ``name`` in one transaction (creating the person if asked)."""
        for template in templates:
            if template.model_id != self._model_id:
                raise GalleryModelMismatchError(
                    f"a template of {template.model_id} cannot go into a gallery of {self._model_id}"
                )
        name = _clean_name(name)
        with self._write() as db:
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None and not create:
                raise PersonNotFoundError(f"nobody called {name!r} is in the gallery")
            if row is None:
                person_id = db.execute(
                    "INSERT INTO people (name, created_at) VALUES (?, ?)", (name, _now())
                ).lastrowid
            else:
                person_id = int(row[0])
            ids = []
            for template in templates:
                vector = np.ascontiguousarray(template.vector, dtype="<f4")
                cursor = db.execute(
                    "INSERT INTO templates (person_id, model_id, vector, crop, source, quality, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        person_id,
                        template.model_id,
                        vector.tobytes(),
                        template.crop_jpeg,
                        template.source,
                        float(template.quality),
                        _now(),
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
            return ids

    def list_templates(self, name: str) -> list[StoredTemplate]:
        with self._lock:
            person_id = self._person_row(self._db, name)[0]
            rows = self._db.execute(
                "SELECT id, person_id, model_id, source, quality, created_at FROM templates "
                "WHERE person_id = ? ORDER BY id",
                (person_id,),
            ).fetchall()
        return [
            StoredTemplate(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]), str(r[5]))
            for r in rows
        ]

    def get_crop(self, template_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT crop FROM templates WHERE id = ?", (template_id,)
            ).fetchone()
        if row is None:
            raise TemplateNotFoundError(f"no template with id {template_id}")
        return None if row[0] is None else bytes(row[0])

    def remove_template(self, template_id: int) -> None:
        """Delete one template (the person stays, possibly with none left)."""
        with self._write() as db:
            if db.execute("DELETE FROM templates WHERE id = ?", (template_id,)).rowcount == 0:
                raise TemplateNotFoundError(f"no template with id {template_id}")
        self._scrub()

    def template_matrix(self) -> TemplateMatrix:
        """All templates, cached until this or another connection writes."""
        with self._lock:
            version = (
                int(self._db.execute("PRAGMA data_version").fetchone()[0]),
                self._local_writes,
            )
            if self._cache is not None and version == self._cache_version:
                return self._cache
            rows = self._db.execute(
                "SELECT t.id, t.person_id, t.vector, p.name, t.quality FROM templates t "
                "JOIN people p ON p.id = t.person_id WHERE t.model_id = ? ORDER BY t.id",
                (self._model_id,),
            ).fetchall()
            dimension = len(rows[0][2]) // 4 if rows else 0
            vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(
                len(rows), dimension
            )
            self._cache = TemplateMatrix(
                template_ids=np.array([r[0] for r in rows], dtype=np.int64),
                person_ids=np.array([r[1] for r in rows], dtype=np.int64),
                vectors=vectors.astype(np.float32),
                names={int(r[1]): str(r[3]) for r in rows},
                qualities=np.array([r[4] for r in rows], dtype=np.float64),
            )
            self._cache_version = version
            return self._cache

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file ("ok" when sound)."""
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def _scrub(self) -> None:
        """Leave no trace of deleted or overwritten data: vacuum, then empty the WAL."""
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def stored_model_id(path: Path) -> str | None:
    """The embedder id a gallery file was made with, or None if there is no such file yet."""
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise GalleryError(f"{path}: not a facelens gallery or damaged ({exc})") from exc
    return None if row is None else str(row[0])


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise GalleryError("a person's name cannot be empty")
    if len(cleaned) > 200:
        raise GalleryError("a person's name must be at most 200 characters")
    return cleaned
