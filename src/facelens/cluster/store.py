"""The cluster index: one SQLite file of faces, groups and the corrections people made.

Tables:

* ``photos``: one row per photo read (path, sha256 of its bytes, size in
  pixels, faces found); a photo already indexed (same bytes) is not read again.
* ``faces``: box ``(x, y, w, h)`` in pixels of the photo, quality, the unit-norm
  float32 template, the aligned RGB crop as JPEG (thumbnail and gallery
  crop), the group it is in (``NULL``: waiting for the next run), and the
  gallery template made from it when its group was named.
* ``groups``: an id that stays put across runs, and a name once a person
  named it (the name of the gallery person it was enrolled as).
* ``links``: the corrections as durable constraints between two faces,
  ``must`` (same person) or ``cannot`` (different people). Every run honours
  them; only a later correction replaces them.
* ``corrections``: a log of every correction, in words, for people to read.

Like the gallery: WAL, one ``BEGIN IMMEDIATE`` transaction per write,
``secure_delete`` on, and the embedder recorded (an index of another model is
refused). And like the gallery, it can hold templates and crops only as
ciphertext: opened with the gallery's key (:class:`GalleryCipher`), a new or
empty index becomes encrypted (``encryption`` and ``key_check`` in ``meta``),
each face's ``vector`` and ``crop`` sealed with AES-256-GCM and bound to the
index, the face and its photo; an encrypted index then refuses to open
without that key or with another, and an index holding faces in the clear
refuses a key (cluster into a new ``--index`` with the key instead).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facelens.errors import (
    ClusterError,
    ClusterFaceNotFoundError,
    ClusterModelMismatchError,
    GroupNotFoundError,
)
from facelens.gallery.protection import GalleryCipher, RowSealer, side_store_cipher
from facelens.io.private_files import make_private_dir
from facelens.io.sqlite_files import open_sqlite_file
from facelens.types import Box, FloatArray

SCHEMA_VERSION = "1"

LinkKind = Literal["must", "cannot"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    faces INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
    quality REAL NOT NULL,
    vector BLOB NOT NULL,
    crop BLOB,
    group_id INTEGER REFERENCES groups(id) ON DELETE SET NULL,
    template_id INTEGER,
    enrolled_as TEXT,
    added_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_by_group ON faces(group_id);
CREATE INDEX IF NOT EXISTS faces_by_photo ON faces(photo_id);
CREATE TABLE IF NOT EXISTS links (
    kind TEXT NOT NULL CHECK (kind IN ('must', 'cannot')),
    face_a INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    face_b INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, face_a, face_b),
    CHECK (face_a < face_b)
);
CREATE INDEX IF NOT EXISTS links_by_b ON links(face_b);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NewFace:
    """A face to index: box in pixels of its photo, unit-norm template, aligned RGB crop as JPEG."""

    box: Box
    quality: float
    vector: FloatArray
    crop_jpeg: bytes | None


@dataclass(frozen=True)
class FaceRecord:
    """A face of the index (without its template)."""

    id: int
    photo_id: int
    source: str
    box: Box
    quality: float
    group_id: int | None
    template_id: int | None  # the gallery template made from this face, if enrolled
    enrolled_as: str | None  # the gallery person that template belongs to

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "box": self.box.as_list(),
            "quality": round(self.quality, 3),
            "group": self.group_id,
            "enrolled_as": self.enrolled_as,
        }


@dataclass(frozen=True)
class GroupRecord:
    """A group of faces (one presumed person), named or not."""

    id: int
    name: str | None
    faces: int


@dataclass(frozen=True, eq=False)
class FaceMatrix:
    """Every face of the index, ready for clustering (rows in face id order)."""

    face_ids: np.ndarray  # (N,) int64
    photo_ids: np.ndarray  # (N,) int64
    group_ids: np.ndarray  # (N,) int64, -1 where the face waits for a group
    vectors: FloatArray  # (N, D) float32, unit norm


class ClusterStore:
    """The cluster index file; see the module docstring.

    Args:
        path: the SQLite file (created with its folder when missing).
        model_id: the embedder whose templates it holds.
        cipher: the gallery's key; see the module docstring.
    """

    def __init__(
        self, path: str | Path, model_id: str, *, cipher: GalleryCipher | None = None
    ) -> None:
        self.path = Path(path)
        make_private_dir(self.path.parent)
        try:
            self._db = open_sqlite_file(self.path, "cluster index")
        except sqlite3.DatabaseError as exc:
            raise ClusterError(f"{self.path}: not a facelens cluster index ({exc})") from exc
        self._lock = threading.RLock()
        self._cipher: GalleryCipher | None = None
        self._sealer = RowSealer(None, "")
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
        return self._cipher is not None

    def _initialise(self, model_id: str, cipher: GalleryCipher | None) -> str:
        try:
            with self.write() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                db.execute("INSERT OR IGNORE INTO meta VALUES ('model_id', ?)", (model_id,))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('index_id', ?)", (uuid.uuid4().hex,))
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                stored = str(meta["model_id"])
                has_faces = db.execute("SELECT 1 FROM faces LIMIT 1").fetchone() is not None
                self._cipher, marks = side_store_cipher(
                    str(self.path), meta, str(meta["index_id"]), cipher, has_faces
                )
                db.executemany("INSERT INTO meta VALUES (?, ?)", list(marks.items()))
                self._sealer = RowSealer(self._cipher, str(meta["index_id"]))
        except sqlite3.DatabaseError as exc:
            raise ClusterError(f"{self.path}: not a facelens cluster index ({exc})") from exc
        if stored != model_id:
            raise ClusterModelMismatchError(
                f"{self.path} holds templates made by {stored}, not {model_id}; open it with "
                f"--embedder {stored}, or cluster into another index (--index)"
            )
        return stored

    def _vector(self, value: bytes, face_id: int, photo_id: int) -> FloatArray:
        plain = self._sealer.open(value, face_id, photo_id, "vector")
        assert plain is not None
        return np.frombuffer(plain, dtype=np.float32)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: all of it is stored, or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- photos and faces -------------------------------------------------------------

    def has_photo(self, sha256: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM photos WHERE sha256 = ?", (sha256,)).fetchone()
        return row is not None

    def add_photo(
        self, source: str, sha256: str, width: int, height: int, faces: list[NewFace]
    ) -> list[int]:
        """Store a photo and its faces (waiting for a group) in one transaction; their ids."""
        now = _now()
        with self.write() as db:
            photo_id = db.execute(
                "INSERT INTO photos (source, sha256, width, height, faces, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (source, sha256, width, height, len(faces), now),
            ).lastrowid
            ids = []
            for face in faces:
                # ids chosen inside the transaction, so each row is sealed with its own id
                face_id = int(
                    db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM faces").fetchone()[0]
                )
                vector = np.ascontiguousarray(face.vector, dtype=np.float32).tobytes()
                db.execute(
                    "INSERT INTO faces (id, photo_id, x, y, w, h, quality, vector, crop, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        face_id,
                        photo_id,
                        face.box.x,
                        face.box.y,
                        face.box.width,
                        face.box.height,
                        face.quality,
                        self._sealer.seal(vector, face_id, int(photo_id or 0), "vector"),
                        self._sealer.seal(face.crop_jpeg, face_id, int(photo_id or 0), "crop"),
                        now,
                    ),
                )
                ids.append(face_id)
        return ids

    def face_matrix(self) -> FaceMatrix:
        """Every face's id, photo, group (-1: none) and template."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, photo_id, COALESCE(group_id, -1), vector FROM faces ORDER BY id"
            ).fetchall()
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return FaceMatrix(empty, empty, empty, np.zeros((0, 0), dtype=np.float32))
        return FaceMatrix(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.int64),
            np.stack([self._vector(r[3], r[0], r[1]) for r in rows]),
        )

    def faces(
        self, face_ids: Iterable[int] | None = None, group_id: int | None = None
    ) -> list[FaceRecord]:
        """Faces by id (each must exist), or every face of a group, or every face."""
        query = (
            "SELECT f.id, f.photo_id, p.source, f.x, f.y, f.w, f.h, f.quality, f.group_id, "
            "f.template_id, f.enrolled_as FROM faces f JOIN photos p ON p.id = f.photo_id"
        )
        with self._lock:
            if face_ids is not None:
                wanted = list(dict.fromkeys(int(i) for i in face_ids))
                rows = []
                for face_id in wanted:
                    row = self._db.execute(query + " WHERE f.id = ?", (face_id,)).fetchone()
                    if row is None:
                        raise ClusterFaceNotFoundError(
                            f"no face {face_id} in {self.path}; `facelens cluster show` lists them"
                        )
                    rows.append(row)
            elif group_id is not None:
                rows = self._db.execute(
                    query + " WHERE f.group_id = ? ORDER BY f.quality DESC, f.id", (group_id,)
                ).fetchall()
            else:
                rows = self._db.execute(query + " ORDER BY f.id").fetchall()
        return [
            FaceRecord(r[0], r[1], r[2], Box(r[3], r[4], r[5], r[6]), r[7], r[8], r[9], r[10])
            for r in rows
        ]

    def crop(self, face_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT crop, photo_id FROM faces WHERE id = ?", (face_id,)
            ).fetchone()
        if row is None:
            raise ClusterFaceNotFoundError(f"no face {face_id} in {self.path}")
        return self._sealer.open(row[0], face_id, row[1], "crop")

    def vectors(self, face_ids: list[int]) -> FloatArray:
        """Templates of ``face_ids``, in that order, ``(len, D)`` float32."""
        with self._lock:
            rows = [
                self._db.execute("SELECT vector, photo_id FROM faces WHERE id = ?", (i,)).fetchone()
                for i in face_ids
            ]
        return np.stack([self._vector(r[0], i, r[1]) for r, i in zip(rows, face_ids, strict=True)])

    def set_enrolled(
        self,
        db: sqlite3.Connection,
        face_ids: list[int],
        template_ids: list[int | None],
        name: str | None,
    ) -> None:
        """Record the gallery template (and its person) made from each face; ``None`` clears it."""
        db.executemany(
            "UPDATE faces SET template_id = ?, enrolled_as = ? WHERE id = ?",
            [
                (t, None if t is None else name, f)
                for f, t in zip(face_ids, template_ids, strict=True)
            ],
        )

    def rename_enrolled(self, db: sqlite3.Connection, old: str, new: str) -> None:
        db.execute("UPDATE faces SET enrolled_as = ? WHERE enrolled_as = ?", (new, old))

    # --- groups -----------------------------------------------------------------------

    def groups(self) -> list[GroupRecord]:
        """Every group with its size, largest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT g.id, g.name, COUNT(f.id) AS n FROM groups g "
                "LEFT JOIN faces f ON f.group_id = g.id GROUP BY g.id ORDER BY n DESC, g.id"
            ).fetchall()
        return [GroupRecord(r[0], r[1], r[2]) for r in rows]

    def group(self, group_id: int) -> GroupRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT g.id, g.name, (SELECT COUNT(*) FROM faces WHERE group_id = g.id) "
                "FROM groups g WHERE g.id = ?",
                (group_id,),
            ).fetchone()
        if row is None:
            raise GroupNotFoundError(
                f"no group {group_id} in {self.path}; `facelens cluster show` lists them"
            )
        return GroupRecord(row[0], row[1], row[2])

    def group_named(self, name: str) -> GroupRecord | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM groups WHERE name = ?", (name,)).fetchone()
        return None if row is None else self.group(int(row[0]))

    def new_group(self, db: sqlite3.Connection) -> int:
        return int(
            db.execute("INSERT INTO groups (created_at) VALUES (?)", (_now(),)).lastrowid or 0
        )

    def assign(self, db: sqlite3.Connection, group_id: int | None, face_ids: Iterable[int]) -> None:
        db.executemany(
            "UPDATE faces SET group_id = ? WHERE id = ?", [(group_id, int(f)) for f in face_ids]
        )

    def forget_group(self, group_id: int) -> int:
        """Erase a group: its faces (templates, crops, constraints) and the group itself.

        Their photos stay recorded, so a later run does not index those faces
        again. The file is then vacuumed and its WAL emptied, so no byte of
        them stays (``secure_delete`` overwrites the rows). Returns the faces erased.
        """
        group = self.group(group_id)
        with self.write() as db:
            count = db.execute("DELETE FROM faces WHERE group_id = ?", (group.id,)).rowcount
            db.execute("DELETE FROM groups WHERE id = ?", (group.id,))
            self.log(db, "forget", {"group": group.id, "faces": count})
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)

    def drop_empty_groups(self, db: sqlite3.Connection) -> None:
        """Delete unnamed groups that lost every face."""
        db.execute(
            "DELETE FROM groups WHERE name IS NULL AND id NOT IN "
            "(SELECT group_id FROM faces WHERE group_id IS NOT NULL)"
        )

    def set_name(self, db: sqlite3.Connection, group_id: int, name: str | None) -> None:
        db.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))

    # --- constraints and the correction log ----------------------------------------------

    def links(self, kind: LinkKind) -> list[tuple[int, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT face_a, face_b FROM links WHERE kind = ?", (kind,)
            ).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def add_links(
        self, db: sqlite3.Connection, kind: LinkKind, pairs: Iterable[tuple[int, int]]
    ) -> None:
        now = _now()
        db.executemany(
            "INSERT OR IGNORE INTO links VALUES (?, ?, ?, ?)",
            [(kind, min(a, b), max(a, b), now) for a, b in pairs if a != b],
        )

    def remove_links_within(
        self, db: sqlite3.Connection, kind: LinkKind, face_ids: list[int]
    ) -> None:
        """Delete every ``kind`` link whose two faces are both in ``face_ids``."""
        db.execute("CREATE TEMP TABLE IF NOT EXISTS chosen (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM chosen")
        db.executemany("INSERT OR IGNORE INTO chosen VALUES (?)", [(int(f),) for f in face_ids])
        db.execute(
            "DELETE FROM links WHERE kind = ? AND face_a IN (SELECT id FROM chosen) "
            "AND face_b IN (SELECT id FROM chosen)",
            (kind,),
        )
        db.execute("DELETE FROM chosen")

    def remove_links_of(self, db: sqlite3.Connection, kind: LinkKind, face_id: int) -> None:
        db.execute(
            "DELETE FROM links WHERE kind = ? AND (face_a = ? OR face_b = ?)",
            (kind, face_id, face_id),
        )

    def log(self, db: sqlite3.Connection, action: str, detail: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO corrections (action, detail, created_at) VALUES (?, ?, ?)",
            (action, json.dumps(detail, sort_keys=True), _now()),
        )

    def corrections(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, action, detail, created_at FROM corrections ORDER BY id"
            ).fetchall()
        return [{"id": r[0], "action": r[1], "detail": json.loads(r[2]), "at": r[3]} for r in rows]

    def stats(self) -> dict[str, int]:
        with self._lock, closing(self._db.cursor()) as cursor:
            photos = cursor.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
            faces = cursor.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
            waiting = cursor.execute(
                "SELECT COUNT(*) FROM faces WHERE group_id IS NULL"
            ).fetchone()[0]
            groups = cursor.execute("SELECT COUNT(*) FROM groups").fetchone()[0]
        return {"photos": photos, "faces": faces, "ungrouped": waiting, "groups": groups}
