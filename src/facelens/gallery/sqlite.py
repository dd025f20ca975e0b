"""The embedded gallery: one SQLite file in WAL mode.

* Every write is one ``BEGIN IMMEDIATE`` transaction, so concurrent writers
  (threads or processes) queue instead of interleaving, and a crash leaves
  either all of an enrollment or none of it.
* ``secure_delete`` is on, so deleted rows are overwritten with zeros; after
  an erase the WAL is checkpointed and truncated, and the file is vacuumed,
  so no byte of the erased person (name, templates, crops) remains in it.
* The gallery records the embedder that made its templates; opening it with
  another embedder raises :class:`GalleryModelMismatchError`.
* Opened with a key (a :class:`GalleryCipher`, see ``protection.py``), a new
  gallery stores template vectors and face crops only as AES-GCM ciphertext
  bound to their row; an encrypted gallery refuses to open without its key or
  with another key. :meth:`SQLiteGallery.rekey` encrypts, re-encrypts (key
  rotation) or decrypts the whole gallery in one transaction.
* A file of another kind (a scan index, a library, the service's state) is
  refused before anything is written to it, by the tables it holds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import (
    GalleryError,
    GalleryKeyMismatchError,
    GalleryModelMismatchError,
    GalleryNotEncryptedError,
    PersonExistsError,
    PersonNotFoundError,
    TemplateNotFoundError,
)
from facelens.gallery.protection import (
    SCHEME,
    GalleryCipher,
    opening_cipher,
    template_associated_data,
)
from facelens.gallery.store import (
    CalibrationRecord,
    NewTemplate,
    TemplateMatrix,
    calibration_audit_detail,
    check_calibration_model,
    clean_name,
    lookup_names,
    require_model,
)
from facelens.io.private_files import make_private_dir
from facelens.io.sqlite_files import open_sqlite_file, other_kind
from facelens.types import Person, StoredTemplate

__all__ = ["SQLiteGallery", "stored_calibration", "stored_meta", "stored_model_id"]

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
CREATE TABLE IF NOT EXISTS calibrations (
    version INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    removed_at TEXT,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL
);
"""


# What to do instead, for a file of another kind given as the gallery.
_INSTEAD = {
    "scan index": "pass it as --scan (or give another --gallery)",
    "library": (
        "give the gallery it belongs to as --gallery (its library is the "
        "<gallery>.library.db beside it)"
    ),
    "service state": "give the gallery file as --gallery, not the state in its .service folder",
}


def _open_failed(path: Path, exc: sqlite3.DatabaseError) -> GalleryError:
    """Why ``path`` could not be opened as a gallery, in words: a file SQLite cannot open or
    create there (a folder that cannot be written) is not called damaged."""
    if "unable to open" in str(exc):
        return GalleryError(
            f"{path}: cannot be opened or created there ({exc}); "
            "check that its folder exists and this user may write to it"
        )
    return GalleryError(f"{path}: not a facelens gallery or damaged ({exc})")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _refuse_other_kind(db: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`GalleryError` when the file is a scan index, a library or another facelens
    file rather than a gallery (a new empty file and a gallery of any version pass)."""
    kind = other_kind(db, "gallery")
    if kind is not None:
        raise GalleryError(f"{path} is a facelens {kind}, not a gallery: {_INSTEAD[kind]}")


class SQLiteGallery:
    """People and their templates in one SQLite file; see the module docstring.

    Args:
        path: the database file (created with its folder if missing).
        model_id: the embedder whose templates this gallery holds.
        cipher: the gallery key. Required for an encrypted gallery; given for a
            new (empty) gallery, it makes the gallery encrypted; given for an
            unencrypted gallery that holds templates, it is refused (encrypt
            that one with :meth:`rekey`, or ``facelens gallery encrypt``).
    """

    def __init__(
        self, path: str | Path, model_id: str, *, cipher: GalleryCipher | None = None
    ) -> None:
        self.path = Path(path)
        make_private_dir(self.path.parent)
        try:
            self._db = open_sqlite_file(self.path, "gallery")
        except sqlite3.DatabaseError as exc:
            raise _open_failed(self.path, exc) from exc
        self._lock = threading.RLock()
        self._cache: TemplateMatrix | None = None
        self._cache_version: tuple[int, int] | None = None
        self._local_writes = 0
        self._cipher: GalleryCipher | None = None
        self._key_check: str | None = None  # as stored when this connection last checked the key
        self._gallery_id = ""
        try:
            self._model_id = self._initialise(model_id, cipher)
        except BaseException:
            self._db.close()
            raise

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def encrypted(self) -> bool:
        """True when templates and crops are stored as ciphertext."""
        return self._cipher is not None

    @property
    def search_server(self) -> None:
        """None: a SQLite gallery's templates are scored in this process."""
        return None

    def _initialise(self, model_id: str, cipher: GalleryCipher | None) -> str:
        with self._write() as db:
            _refuse_other_kind(db, self.path)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('model_id', ?)", (model_id,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('gallery_id', ?)", (uuid.uuid4().hex,))
            stored = db.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()[0]
            self._gallery_id = str(_meta(db, "gallery_id"))
            self._cipher = self._check_key(db, cipher)
            self._key_check = _meta(db, "key_check")
        if stored != model_id:
            raise GalleryModelMismatchError(
                f"{self.path} holds templates made by {stored}, but this facelens embeds with "
                f"{model_id}; templates of different models cannot be compared. Open it with "
                f"the model {stored}, or enroll the people again into a new gallery"
            )
        return str(stored)

    def _check_key(
        self, db: sqlite3.Connection, cipher: GalleryCipher | None
    ) -> GalleryCipher | None:
        """The cipher to use, after checking it against the gallery (inside the open transaction)."""
        scheme = _meta(db, "encryption")
        if scheme is not None:
            return opening_cipher(
                str(self.path), scheme, _meta(db, "key_check"), self._gallery_id, cipher
            )
        if cipher is None:
            return None
        if db.execute("SELECT COUNT(*) FROM templates").fetchone()[0]:
            raise GalleryNotEncryptedError(
                f"{self.path} stores its templates unencrypted, yet a key was given; encrypt it "
                "first with `facelens gallery encrypt`, or open it without a key"
            )
        self._mark_encrypted(db, cipher)
        return cipher

    def _mark_encrypted(self, db: sqlite3.Connection, cipher: GalleryCipher | None) -> None:
        db.execute("DELETE FROM meta WHERE key IN ('encryption', 'key_check')")
        if cipher is not None:
            db.execute("INSERT INTO meta VALUES ('encryption', ?)", (SCHEME,))
            db.execute(
                "INSERT INTO meta VALUES ('key_check', ?)",
                (cipher.key_check(self._gallery_id).hex(),),
            )

    def _ensure_same_key(self, db: sqlite3.Connection) -> None:
        """Refuse to go on if another connection encrypted, rotated or decrypted the gallery."""
        if _meta(db, "key_check") != self._key_check:
            raise GalleryKeyMismatchError(
                f"{self.path} was encrypted, re-keyed or decrypted since it was opened here; "
                "open it again with its current key"
            )

    def _seal(self, data: bytes, template_id: int, person_id: int, field: str) -> bytes:
        """What is stored for a vector or crop: the bytes themselves, or their ciphertext."""
        if self._cipher is None:
            return data
        aad = template_associated_data(self._gallery_id, template_id, person_id, field)
        return self._cipher.encrypt(data, aad)

    def _unseal(self, stored: bytes, template_id: int, person_id: int, field: str) -> bytes:
        if self._cipher is None:
            return stored
        aad = template_associated_data(self._gallery_id, template_id, person_id, field)
        return self._cipher.decrypt(stored, aad)

    def rekey(self, new_cipher: GalleryCipher | None) -> int:
        """Re-store every vector and crop under ``new_cipher`` in one transaction; returns rows.

        From unencrypted to a key: encrypt the gallery. From one key to another:
        rotate (afterwards only the new key opens it). From a key to None:
        decrypt. Every row is decrypted with the current key first, so a
        damaged row aborts the whole change and nothing is lost. Afterwards the
        file is vacuumed and the WAL emptied, so no old plaintext or old
        ciphertext remains in the file.
        """
        with self._write() as db:
            self._ensure_same_key(db)
            rows = db.execute("SELECT id, person_id, vector, crop FROM templates").fetchall()
            plain = [
                (
                    int(r[0]),
                    int(r[1]),
                    self._unseal(bytes(r[2]), int(r[0]), int(r[1]), "vector"),
                    None
                    if r[3] is None
                    else self._unseal(bytes(r[3]), int(r[0]), int(r[1]), "crop"),
                )
                for r in rows
            ]
            old_cipher, self._cipher = self._cipher, new_cipher
            try:
                for template_id, person_id, vector, crop in plain:
                    db.execute(
                        "UPDATE templates SET vector = ?, crop = ? WHERE id = ?",
                        (
                            self._seal(vector, template_id, person_id, "vector"),
                            None
                            if crop is None
                            else self._seal(crop, template_id, person_id, "crop"),
                            template_id,
                        ),
                    )
                self._mark_encrypted(db, new_cipher)
            except BaseException:
                self._cipher = old_cipher
                raise
            self._key_check = _meta(db, "key_check")
        self._cache = None
        self._scrub()
        return len(plain)

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

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read snapshot: the key check and the rows it guards are read together."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def _person_row(self, db: sqlite3.Connection, name: str) -> tuple[int, str, str]:
        for key in lookup_names(name):
            row = db.execute(
                "SELECT id, name, created_at FROM people WHERE name = ?", (key,)
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1]), str(row[2])
        raise PersonNotFoundError(f"nobody called {name!r} is in the gallery")

    def _person(self, db: sqlite3.Connection, name: str) -> Person:
        person_id, stored_name, created = self._person_row(db, name)
        count = db.execute(
            "SELECT COUNT(*) FROM templates WHERE person_id = ?", (person_id,)
        ).fetchone()[0]
        return Person(person_id, stored_name, int(count), created)

    def add_person(self, name: str) -> Person:
        """A new person with no template yet."""
        name = clean_name(name)
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
        new = clean_name(new)
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
        require_model(templates, self._model_id)
        with self._write() as db:
            try:
                person_id: int | None = self._person_row(db, name)[0]
            except PersonNotFoundError:
                if not create:
                    raise
                person_id = db.execute(
                    "INSERT INTO people (name, created_at) VALUES (?, ?)",
                    (clean_name(name), _now()),
                ).lastrowid
            self._ensure_same_key(db)
            ids = []
            # Ids are chosen here (the write lock is held) because ciphertexts are bound to them.
            last_id = int(db.execute("SELECT IFNULL(MAX(id), 0) FROM templates").fetchone()[0])
            for offset, template in enumerate(templates, start=1):
                template_id, owner = last_id + offset, int(person_id or 0)
                vector = np.ascontiguousarray(template.vector, dtype="<f4").tobytes()
                crop = template.crop_jpeg
                db.execute(
                    "INSERT INTO templates (id, person_id, model_id, vector, crop, source, quality, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        template_id,
                        owner,
                        template.model_id,
                        self._seal(vector, template_id, owner, "vector"),
                        None if crop is None else self._seal(crop, template_id, owner, "crop"),
                        template.source,
                        float(template.quality),
                        _now(),
                    ),
                )
                ids.append(template_id)
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
        with self._read() as db:
            self._ensure_same_key(db)
            row = db.execute(
                "SELECT crop, person_id FROM templates WHERE id = ?", (template_id,)
            ).fetchone()
        if row is None:
            raise TemplateNotFoundError(f"no template with id {template_id}")
        return (
            None
            if row[0] is None
            else self._unseal(bytes(row[0]), template_id, int(row[1]), "crop")
        )

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
            with self._read() as db:
                self._ensure_same_key(db)
                rows = db.execute(
                    "SELECT t.id, t.person_id, t.vector, p.name, t.quality FROM templates t "
                    "JOIN people p ON p.id = t.person_id WHERE t.model_id = ? ORDER BY t.id",
                    (self._model_id,),
                ).fetchall()
            plain = [self._unseal(bytes(r[2]), int(r[0]), int(r[1]), "vector") for r in rows]
            dimension = len(plain[0]) // 4 if plain else 0
            vectors = np.frombuffer(b"".join(plain), dtype="<f4").reshape(len(rows), dimension)
            self._cache = TemplateMatrix(
                template_ids=np.array([r[0] for r in rows], dtype=np.int64),
                person_ids=np.array([r[1] for r in rows], dtype=np.int64),
                vectors=vectors.astype(np.float32),
                names={int(r[1]): str(r[3]) for r in rows},
                qualities=np.array([r[4] for r in rows], dtype=np.float64),
            )
            self._cache_version = version
            return self._cache

    def store_calibration(self, record: dict[str, Any]) -> CalibrationRecord:
        """Put a fitted calibration in force (the one before is kept, marked removed)."""
        check_calibration_model(record, self._model_id, str(self.path))
        with self._write() as db:
            now = _now()
            db.execute("UPDATE calibrations SET removed_at = ? WHERE removed_at IS NULL", (now,))
            db.execute(
                "INSERT INTO calibrations (id, model_id, created_at, record) VALUES (?, ?, ?, ?)",
                (record["id"], record["model_id"], record["created"], json.dumps(record)),
            )
            version = int(db.execute("SELECT MAX(version) FROM calibrations").fetchone()[0])
            db.execute(
                "INSERT INTO audit (at, action, target, detail) VALUES (?, 'calibrate', ?, ?)",
                (now, record["id"], json.dumps(calibration_audit_detail(record, version))),
            )
        return CalibrationRecord(version, record["created"], None, record)

    def calibration(self) -> CalibrationRecord | None:
        """The calibration in force, or None (the shipped one applies)."""
        with self._lock:
            return _active_calibration(self._db)

    def remove_calibration(self) -> CalibrationRecord | None:
        """Take the calibration in force out of force (kept in the history); None if none."""
        with self._write() as db:
            active = _active_calibration(db)
            if active is None:
                return None
            now = _now()
            db.execute(
                "UPDATE calibrations SET removed_at = ? WHERE version = ?", (now, active.version)
            )
            db.execute(
                "INSERT INTO audit (at, action, target, detail) VALUES (?, 'calibration_remove', ?, ?)",
                (now, active.id, json.dumps({"version": active.version})),
            )
        return CalibrationRecord(active.version, active.created, now, active.record)

    def calibration_history(self) -> list[CalibrationRecord]:
        """Every calibration this gallery has had, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, created_at, removed_at, record FROM calibrations ORDER BY version"
            ).fetchall()
        return [CalibrationRecord(int(r[0]), str(r[1]), r[2], json.loads(r[3])) for r in rows]

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
            _refuse_other_kind(db, path)
            row = db.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _open_failed(path, exc) from exc
    return None if row is None else str(row[0])


def stored_meta(path: Path) -> dict[str, str]:
    """A gallery file's ``meta`` table (model id, encryption scheme, ...), read without a key.

    Raises GalleryError when there is no gallery at ``path``.
    """
    if not path.is_file():
        raise GalleryError(f"there is no gallery at {path}")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)) as db:
            _refuse_other_kind(db, path)
            rows = db.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.DatabaseError as exc:
        raise _open_failed(path, exc) from exc
    return {str(key): str(value) for key, value in rows}


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _active_calibration(db: sqlite3.Connection) -> CalibrationRecord | None:
    try:
        row = db.execute(
            "SELECT version, created_at, record FROM calibrations WHERE removed_at IS NULL "
            "ORDER BY version DESC LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError:  # a gallery file from before calibrations (read-only)
        return None
    return (
        None
        if row is None
        else CalibrationRecord(int(row[0]), str(row[1]), None, json.loads(row[2]))
    )


def stored_calibration(path: Path) -> CalibrationRecord | None:
    """The calibration in force in a gallery file, read without a key; None if there is none
    (or no gallery file yet)."""
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)) as db:
            _refuse_other_kind(db, path)
            return _active_calibration(db)
    except sqlite3.DatabaseError as exc:
        raise _open_failed(path, exc) from exc
