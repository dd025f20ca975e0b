"""The library (formerly the cluster index): one SQLite file beside the gallery holding
every photo and video scanned, every face found, the groups of faces and the
corrections people made.

Tables:

* ``photos``: one row per item (a photo or a video; ``kind``), keyed by its
  path while it waits (``state`` ``pending``), then by the sha256 of its bytes
  once read (``done``, with its size in pixels and faces found; or ``failed``
  with the ``error``). An item with the bytes of one already read is ``done``
  with no faces (``duplicate_of`` that item). A scan interrupted at any point
  resumes with the items still pending.
* ``faces``: box ``(x, y, w, h)`` in pixels of the photo (or video frame),
  ``frame_index`` and ``time`` (seconds) for a video's faces (``NULL`` for a
  photo's), quality, the unit-norm float32 template, the aligned RGB crop as
  JPEG (thumbnail and gallery crop), the group it is in (``NULL``: waiting for
  the next run), and the gallery template made from it when its group was named.
* ``groups``: an id that stays put across runs, a name once a person named it
  (the name of the gallery person it was enrolled as: its faces are that
  person's appearances), and ``hidden`` (strangers nobody wants to name).
* ``not_person``: "not this person" said about a face and a name (an
  identified appearance that is wrong); the face is never shown as theirs.
* ``undo``: the state the last correction changed, so it can be undone.
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

A file of another kind (a gallery, a scan index) is refused before anything is
written to it, by the tables it holds.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from facelens.cluster.library_store import LinkKind, Transaction
from facelens.errors import (
    ClusterError,
    ClusterFaceNotFoundError,
    ClusterModelMismatchError,
    GroupNotFoundError,
    LibraryItemNotFoundError,
)
from facelens.gallery.protection import GalleryCipher, RowSealer, side_store_cipher
from facelens.io.private_files import make_private_dir
from facelens.io.sqlite_files import open_sqlite_file, other_kind
from facelens.types import Box, FloatArray

__all__ = [
    "FACE_COLUMNS",
    "SCHEMA_VERSION",
    "ClusterStore",
    "FaceMatrix",
    "FaceRecord",
    "GroupRecord",
    "ItemRecord",
    "ItemState",
    "ItemTally",
    "NewFace",
    "face_matrix_of",
    "face_record",
    "naming",
]

SCHEMA_VERSION = "2"


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
CREATE TABLE IF NOT EXISTS not_person (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (face_id, name)
);
CREATE TABLE IF NOT EXISTS undo (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    action TEXT NOT NULL,
    snapshot TEXT NOT NULL,
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


# Columns added in schema 2 (the library); an index of schema 1 gains them when opened.
_ADDED_COLUMNS = {
    "photos": [
        ("kind", "TEXT NOT NULL DEFAULT 'image'"),
        ("state", "TEXT NOT NULL DEFAULT 'done'"),
        ("error", "TEXT"),
        ("frames", "INTEGER"),
        ("duplicate_of", "INTEGER"),
    ],
    "faces": [("frame_index", "INTEGER"), ("time", "REAL")],
    "groups": [("hidden", "INTEGER NOT NULL DEFAULT 0")],
}
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS photos_by_source ON photos(source)",
    "CREATE INDEX IF NOT EXISTS photos_by_state ON photos(state, id)",
    "CREATE INDEX IF NOT EXISTS not_person_by_name ON not_person(name)",
)

# What to do instead, for a file of another kind given as the library.
_INSTEAD = {
    "gallery": (
        "pass it as --gallery; its library is the <gallery>.library.db beside it "
        "(or give another library file)"
    ),
    "scan index": "pass it as --scan (or give another library file)",
    "service state": "give another library file",
}

ItemState = Literal["pending", "done", "failed"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _connection(tx: Transaction) -> sqlite3.Connection:
    """The SQLite connection behind a transaction of :meth:`ClusterStore.write`."""
    return cast(sqlite3.Connection, tx)


@dataclass(frozen=True)
class NewFace:
    """A face to index: box in pixels of its photo, unit-norm template, aligned RGB crop as JPEG."""

    box: Box
    quality: float
    vector: FloatArray
    crop_jpeg: bytes | None
    frame_index: int | None = None  # a video's frame (None for a photo)
    time: float | None = None  # seconds into the video (None for a photo)


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
    frame_index: int | None = None  # a video's frame (None for a photo)
    time: float | None = None  # seconds into the video (None for a photo)
    kind: str = "image"  # "image" or "video"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "box": self.box.as_list(),
            "quality": round(self.quality, 3),
            "group": self.group_id,
            "enrolled_as": self.enrolled_as,
            "frame_index": self.frame_index,
            "time": None if self.time is None else round(self.time, 3),
        }


@dataclass(frozen=True)
class GroupRecord:
    """A group of faces (one presumed person), named or not."""

    id: int
    name: str | None
    faces: int
    hidden: bool = False


@dataclass(frozen=True)
class ItemRecord:
    """An item of the library (a photo or a video) and its state."""

    id: int
    source: str
    kind: str
    state: str
    faces: int
    error: str | None


@dataclass(frozen=True)
class ItemTally:
    """How many items are in each state."""

    pending: int
    done: int
    failed: int

    @property
    def total(self) -> int:
        return self.pending + self.done + self.failed


@dataclass(frozen=True, eq=False)
class FaceMatrix:
    """Every face of the index, ready for clustering (rows in face id order).

    ``photo_ids`` tells one picture from another: a photo, or one frame of a
    video (two faces of one picture are never one person).
    """

    face_ids: np.ndarray  # (N,) int64
    photo_ids: np.ndarray  # (N,) int64, one id per photo or video frame
    group_ids: np.ndarray  # (N,) int64, -1 where the face waits for a group
    vectors: FloatArray  # (N, D) float32, unit norm


FACE_COLUMNS = (
    "f.id, {item}, p.source, f.x, f.y, f.w, f.h, f.quality, f.group_id, "
    "f.template_id, f.enrolled_as, f.frame_index, f.time, p.kind"
)
"""The columns :func:`face_record` reads (``{item}``: the face's photo id column)."""


def face_record(row: Sequence[Any]) -> FaceRecord:
    """A face from a row of :data:`FACE_COLUMNS`."""
    return FaceRecord(
        int(row[0]),
        int(row[1]),
        str(row[2]),
        Box(row[3], row[4], row[5], row[6]),
        float(row[7]),
        None if row[8] is None else int(row[8]),
        None if row[9] is None else int(row[9]),
        row[10],
        None if row[11] is None else int(row[11]),
        None if row[12] is None else float(row[12]),
        str(row[13]),
    )


def face_matrix_of(
    rows: Sequence[Sequence[Any]], vector_of: Callable[[Sequence[Any]], FloatArray]
) -> FaceMatrix:
    """A face matrix from ``(id, photo id, group id or -1, vector, frame index)`` rows in id
    order; ``vector_of(row)`` opens a row's template."""
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return FaceMatrix(empty, empty, empty, np.zeros((0, 0), dtype=np.float32))
    pictures: dict[tuple[int, int], int] = {}
    return FaceMatrix(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array(
            [
                pictures.setdefault((r[1], -1 if r[4] is None else r[4]), len(pictures))
                for r in rows
            ],
            dtype=np.int64,
        ),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.stack([vector_of(r) for r in rows]),
    )


def naming(corrections: list[tuple[int, str]], name: str) -> list[int]:
    """The ids of the corrections (``(id, JSON detail)``) that name ``name`` or a name the
    person had before, erased with the person: a correction that gave someone a name
    (``{"name": new, "was": old}``, from a rename in the gallery or the library) makes
    ``old`` theirs too, back through every rename."""
    details = [(int(i), json.loads(text)) for i, text in corrections]
    theirs = {name}
    for _ in range(len(details)):  # each pass follows one more rename back
        former = {
            d["was"]
            for _, d in details
            if d.get("name") in theirs and isinstance(d.get("was"), str)
        }
        if former <= theirs:
            break
        theirs |= former
    return [i for i, d in details if any(v in theirs for v in d.values() if isinstance(v, str))]


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

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def public_name(self) -> str:
        return self.path.name

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held for a multi-step change: a lock file beside the library, so the threads and
        processes that open it take turns."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def face_version(self) -> tuple[int, int]:
        """``(faces, highest face id)``: changes whenever faces are added or erased."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM faces").fetchone()
        return int(row[0]), int(row[1])

    def _initialise(self, model_id: str, cipher: GalleryCipher | None) -> str:
        try:
            with self._write() as db:
                kind = other_kind(db, "library")
                if kind is not None:
                    raise ClusterError(
                        f"{self.path} is a facelens {kind}, not a library: {_INSTEAD[kind]}"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                self._migrate(db)
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

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring an index of schema 1 (``facelens cluster``) up to the library's schema."""
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns:
                if name not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        for statement in _ADDED_INDEXES:
            db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def _vector(self, value: bytes, face_id: int, photo_id: int) -> FloatArray:
        plain = self._sealer.open(value, face_id, photo_id, "vector")
        assert plain is not None
        return np.frombuffer(plain, dtype=np.float32)

    def write(self) -> AbstractContextManager[Transaction]:
        """One ``BEGIN IMMEDIATE`` transaction: all of it is stored, or none."""
        return self._write()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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
        with self._write() as db:
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
        with self._write() as db:
            photo_id = int(
                db.execute(
                    "INSERT INTO photos (source, sha256, width, height, faces, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (source, sha256, width, height, len(faces), now),
                ).lastrowid
                or 0
            )
            return self._insert_faces(db, photo_id, faces, now)

    def _insert_faces(
        self, db: sqlite3.Connection, photo_id: int, faces: list[NewFace], now: str
    ) -> list[int]:
        ids = []
        for face in faces:
            # ids chosen inside the transaction, so each row is sealed with its own id
            face_id = int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM faces").fetchone()[0])
            vector = np.ascontiguousarray(face.vector, dtype=np.float32).tobytes()
            db.execute(
                "INSERT INTO faces (id, photo_id, x, y, w, h, quality, vector, crop, added_at, "
                "frame_index, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    face_id,
                    photo_id,
                    face.box.x,
                    face.box.y,
                    face.box.width,
                    face.box.height,
                    face.quality,
                    self._sealer.seal(vector, face_id, photo_id, "vector"),
                    self._sealer.seal(face.crop_jpeg, face_id, photo_id, "crop"),
                    now,
                    face.frame_index,
                    face.time,
                ),
            )
            ids.append(face_id)
        return ids

    # --- items: what a scan registers, then reads ---------------------------------------

    def register_items(self, items: Iterable[tuple[str, str]]) -> int:
        """Register ``(source, kind)`` items as pending; a source already known keeps its
        state. Returns how many are new."""
        now = _now()
        added = 0
        with self._write() as db:
            for source, kind in items:
                if db.execute("SELECT 1 FROM photos WHERE source = ?", (source,)).fetchone():
                    continue
                db.execute(
                    "INSERT INTO photos (source, sha256, width, height, faces, added_at, kind, "
                    "state) VALUES (?, ?, 0, 0, 0, ?, ?, 'pending')",
                    (source, f"pending:{uuid.uuid4().hex}", now, kind),
                )
                added += 1
        return added

    def pending_items(self, limit: int | None = None) -> list[tuple[str, str]]:
        """``(source, kind)`` of the items waiting to be read, in the order registered."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source, kind FROM photos WHERE state = 'pending' ORDER BY id LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def retry_failed(self) -> int:
        """Put failed items back to pending; returns how many."""
        with self._write() as db:
            return int(
                db.execute(
                    "UPDATE photos SET state = 'pending', error = NULL WHERE state = 'failed'"
                ).rowcount
            )

    def record_item(
        self,
        source: str,
        *,
        sha256: str | None = None,
        width: int = 0,
        height: int = 0,
        faces: list[NewFace] | None = None,
        frames: int | None = None,
        error: str | None = None,
    ) -> list[int]:
        """Store a pending item's faces and mark it done (or ``failed`` with ``error``) in one
        transaction; the new faces' ids. An item that is not pending is left as it is; an
        item whose bytes (``sha256``) were read before is done with no faces."""
        faces = faces or []
        now = _now()
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM photos WHERE source = ? AND state = 'pending'", (source,)
            ).fetchone()
            if row is None:
                return []
            item_id = int(row[0])
            if error is not None:
                db.execute(
                    "UPDATE photos SET state = 'failed', error = ?, frames = ?, added_at = ? "
                    "WHERE id = ?",
                    (error[:1000], frames, now, item_id),
                )
                return []
            twin = None
            if sha256 is not None:
                twin = db.execute(
                    "SELECT id FROM photos WHERE sha256 = ? AND id != ?", (sha256, item_id)
                ).fetchone()
            if twin is not None:
                db.execute(
                    "UPDATE photos SET state = 'done', duplicate_of = ?, added_at = ? WHERE id = ?",
                    (int(twin[0]), now, item_id),
                )
                return []
            db.execute(
                "UPDATE photos SET state = 'done', sha256 = COALESCE(?, sha256), width = ?, "
                "height = ?, faces = ?, frames = ?, error = NULL, added_at = ? WHERE id = ?",
                (sha256, width, height, len(faces), frames, now, item_id),
            )
            return self._insert_faces(db, item_id, faces, now)

    def item_counts(self) -> ItemTally:
        with self._lock:
            found = dict(
                self._db.execute("SELECT state, COUNT(*) FROM photos GROUP BY state").fetchall()
            )
        return ItemTally(
            int(found.get("pending", 0)), int(found.get("done", 0)), int(found.get("failed", 0))
        )

    def items(self, state: ItemState | None = None, limit: int = -1) -> list[ItemRecord]:
        """Items (every one, or those in ``state``), in the order registered."""
        query = "SELECT id, source, kind, state, faces, error FROM photos"
        with self._lock:
            if state is None:
                rows = self._db.execute(query + " ORDER BY id LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute(
                    query + " WHERE state = ? ORDER BY id LIMIT ?", (state, limit)
                ).fetchall()
        return [ItemRecord(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def item(self, item_id: int) -> ItemRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT id, source, kind, state, faces, error FROM photos WHERE id = ?", (item_id,)
            ).fetchone()
        if row is None:
            raise LibraryItemNotFoundError(f"no item {item_id} in the library")
        return ItemRecord(row[0], row[1], row[2], row[3], row[4], row[5])

    def face_matrix(self) -> FaceMatrix:
        """Every face's id, photo, group (-1: none) and template."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, photo_id, COALESCE(group_id, -1), vector, frame_index FROM faces "
                "ORDER BY id"
            ).fetchall()
        return face_matrix_of(rows, lambda r: self._vector(r[3], r[0], r[1]))

    def faces(
        self, face_ids: Iterable[int] | None = None, group_id: int | None = None
    ) -> list[FaceRecord]:
        """Faces by id (each must exist), or every face of a group, or every face."""
        query = (
            f"SELECT {FACE_COLUMNS.format(item='f.photo_id')} "
            "FROM faces f JOIN photos p ON p.id = f.photo_id"
        )
        with self._lock:
            if face_ids is not None:
                wanted = list(dict.fromkeys(int(i) for i in face_ids))
                rows = []
                for face_id in wanted:
                    row = self._db.execute(query + " WHERE f.id = ?", (face_id,)).fetchone()
                    if row is None:
                        raise ClusterFaceNotFoundError(
                            f"no face {face_id} in the library; `facelens cluster show` lists them"
                        )
                    rows.append(row)
            elif group_id is not None:
                rows = self._db.execute(
                    query + " WHERE f.group_id = ? ORDER BY f.quality DESC, f.id", (group_id,)
                ).fetchall()
            else:
                rows = self._db.execute(query + " ORDER BY f.id").fetchall()
        return [face_record(r) for r in rows]

    def crop(self, face_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT crop, photo_id FROM faces WHERE id = ?", (face_id,)
            ).fetchone()
        if row is None:
            raise ClusterFaceNotFoundError(f"no face {face_id} in the library")
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
        tx: Transaction,
        face_ids: list[int],
        template_ids: list[int | None],
        name: str | None,
    ) -> None:
        """Record the gallery template (and its person) made from each face; ``None`` clears it."""
        db = _connection(tx)
        db.executemany(
            "UPDATE faces SET template_id = ?, enrolled_as = ? WHERE id = ?",
            [
                (t, None if t is None else name, f)
                for f, t in zip(face_ids, template_ids, strict=True)
            ],
        )

    def rename_enrolled(self, tx: Transaction, old: str, new: str) -> None:
        db = _connection(tx)
        db.execute("UPDATE faces SET enrolled_as = ? WHERE enrolled_as = ?", (new, old))

    # --- groups -----------------------------------------------------------------------

    def groups(self) -> list[GroupRecord]:
        """Every group with its size, largest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT g.id, g.name, COUNT(f.id) AS n, g.hidden FROM groups g "
                "LEFT JOIN faces f ON f.group_id = g.id GROUP BY g.id ORDER BY n DESC, g.id"
            ).fetchall()
        return [GroupRecord(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def unnamed_groups(
        self, offset: int = 0, limit: int = 50, *, hidden: bool = False
    ) -> tuple[int, list[GroupRecord]]:
        """A page of the groups nobody named (the hidden ones with ``hidden``), largest
        first, and how many there are in all."""
        where = "g.name IS NULL AND g.hidden = ?"
        with self._lock:
            total = self._db.execute(
                f"SELECT COUNT(*) FROM groups g WHERE {where}", (int(hidden),)
            ).fetchone()[0]
            rows = self._db.execute(
                "SELECT g.id, g.name, COUNT(f.id) AS n, g.hidden FROM groups g "
                f"JOIN faces f ON f.group_id = g.id WHERE {where} "
                "GROUP BY g.id ORDER BY n DESC, g.id LIMIT ? OFFSET ?",
                (int(hidden), limit, offset),
            ).fetchall()
        return int(total), [GroupRecord(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def sample_faces(self, group_id: int, count: int) -> list[int]:
        """Ids of the ``count`` best faces (highest quality) of a group."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM faces WHERE group_id = ? ORDER BY quality DESC, id LIMIT ?",
                (group_id, count),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def set_hidden(self, tx: Transaction, group_id: int, hidden: bool) -> None:
        db = _connection(tx)
        db.execute("UPDATE groups SET hidden = ? WHERE id = ?", (int(hidden), group_id))

    def group(self, group_id: int) -> GroupRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT g.id, g.name, (SELECT COUNT(*) FROM faces WHERE group_id = g.id), "
                "g.hidden FROM groups g WHERE g.id = ?",
                (group_id,),
            ).fetchone()
        if row is None:
            raise GroupNotFoundError(
                f"no group {group_id} in {self.path}; `facelens cluster show` lists them"
            )
        return GroupRecord(row[0], row[1], row[2], bool(row[3]))

    def group_named(self, name: str) -> GroupRecord | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM groups WHERE name = ?", (name,)).fetchone()
        return None if row is None else self.group(int(row[0]))

    def new_group(self, tx: Transaction) -> int:
        db = _connection(tx)
        return int(
            db.execute("INSERT INTO groups (created_at) VALUES (?)", (_now(),)).lastrowid or 0
        )

    def assign(self, tx: Transaction, group_id: int | None, face_ids: Iterable[int]) -> None:
        db = _connection(tx)
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
        with self._write() as db:
            count = db.execute("DELETE FROM faces WHERE group_id = ?", (group.id,)).rowcount
            db.execute("DELETE FROM groups WHERE id = ?", (group.id,))
            self.log(db, "forget", {"group": group.id, "faces": count})
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)

    def forget_person(self, name: str) -> int:
        """Erase every trace of a person: the faces of the group named ``name`` (templates,
        crops, constraints), every "not this person" said about them, the corrections that
        name them and the undo record; then vacuum (as :meth:`forget_group`). Returns the
        faces erased."""
        group = self.group_named(name)
        count = 0
        with self._write() as db:
            if group is not None:
                count = db.execute("DELETE FROM faces WHERE group_id = ?", (group.id,)).rowcount
                db.execute("DELETE FROM groups WHERE id = ?", (group.id,))
            db.execute("DELETE FROM not_person WHERE name = ?", (name,))
            db.execute("DELETE FROM undo")
            db.execute("UPDATE faces SET enrolled_as = NULL WHERE enrolled_as = ?", (name,))
            rows = db.execute("SELECT id, detail FROM corrections").fetchall()
            db.executemany(
                "DELETE FROM corrections WHERE id = ?", [(i,) for i in naming(rows, name)]
            )
            if group is not None:
                self.log(db, "forget", {"group": group.id, "faces": count})
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)

    def add_not_person(self, tx: Transaction, face_id: int, name: str) -> None:
        db = _connection(tx)
        db.execute("INSERT OR IGNORE INTO not_person VALUES (?, ?, ?)", (face_id, name, _now()))

    def remove_not_person(self, tx: Transaction, face_ids: Iterable[int], name: str) -> None:
        """Withdraw "not ``name``" from these faces (someone since said they are)."""
        _connection(tx).executemany(
            "DELETE FROM not_person WHERE face_id = ? AND name = ?",
            [(int(f), name) for f in face_ids],
        )

    def not_person(self, name: str) -> set[int]:
        """The faces someone said are not ``name``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT face_id FROM not_person WHERE name = ?", (name,)
            ).fetchall()
        return {int(r[0]) for r in rows}

    # --- undo: the state before the last correction --------------------------------------

    def save_undo(self, tx: Transaction, action: str) -> None:
        """Keep the groups, face placements, constraints and "not this person" marks as
        they are now, so the next correction can be undone (one level)."""
        db = _connection(tx)
        snapshot = {
            "groups": db.execute("SELECT id, name, created_at, hidden FROM groups").fetchall(),
            "faces": db.execute(
                "SELECT id, group_id FROM faces WHERE group_id IS NOT NULL"
            ).fetchall(),
            "links": db.execute("SELECT kind, face_a, face_b, created_at FROM links").fetchall(),
            "not_person": db.execute("SELECT face_id, name, created_at FROM not_person").fetchall(),
        }
        db.execute(
            "INSERT OR REPLACE INTO undo VALUES (1, ?, ?, ?)",
            (action, json.dumps(snapshot), _now()),
        )

    def undo_record(self) -> tuple[str, str, str] | None:
        """The saved state (action, snapshot, time), to put back with :meth:`put_undo_record`
        when a later correction is refused."""
        with self._lock:
            row = self._db.execute("SELECT action, snapshot, created_at FROM undo").fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def put_undo_record(self, tx: Transaction, record: tuple[str, str, str]) -> None:
        """Put back an undo record read with :meth:`undo_record`."""
        _connection(tx).execute("INSERT OR REPLACE INTO undo VALUES (1, ?, ?, ?)", record)

    def restore_undo(self) -> str | None:
        """Put back the state saved before the last correction; the correction's name, or
        None when there is nothing to undo. Faces erased since stay erased."""
        with self._write() as db:
            row = db.execute("SELECT action, snapshot FROM undo WHERE id = 1").fetchone()
            if row is None:
                return None
            snapshot = json.loads(row[1])
            faces = {int(r[0]) for r in db.execute("SELECT id FROM faces")}
            db.execute("UPDATE faces SET group_id = NULL")
            db.execute("DELETE FROM links")
            db.execute("DELETE FROM not_person")
            db.execute("UPDATE groups SET name = NULL")
            db.execute("DELETE FROM groups")
            db.executemany("INSERT INTO groups VALUES (?, ?, ?, ?)", snapshot["groups"])
            db.executemany(
                "UPDATE faces SET group_id = ? WHERE id = ?",
                [(g, f) for f, g in snapshot["faces"] if f in faces],
            )
            db.executemany(
                "INSERT INTO links VALUES (?, ?, ?, ?)",
                [r for r in snapshot["links"] if r[1] in faces and r[2] in faces],
            )
            db.executemany(
                "INSERT INTO not_person VALUES (?, ?, ?)",
                [r for r in snapshot["not_person"] if r[0] in faces],
            )
            db.execute("DELETE FROM undo")
            self.drop_empty_groups(db)
            self.log(db, "undo", {"undid": row[0]})
        return str(row[0])

    def drop_empty_groups(self, tx: Transaction) -> None:
        """Delete unnamed groups that lost every face."""
        db = _connection(tx)
        db.execute(
            "DELETE FROM groups WHERE name IS NULL AND id NOT IN "
            "(SELECT group_id FROM faces WHERE group_id IS NOT NULL)"
        )

    def set_name(self, tx: Transaction, group_id: int, name: str | None) -> None:
        db = _connection(tx)
        db.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))

    # --- constraints and the correction log ----------------------------------------------

    def links(self, kind: LinkKind) -> list[tuple[int, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT face_a, face_b FROM links WHERE kind = ?", (kind,)
            ).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def add_links(self, tx: Transaction, kind: LinkKind, pairs: Iterable[tuple[int, int]]) -> None:
        db = _connection(tx)
        now = _now()
        db.executemany(
            "INSERT OR IGNORE INTO links VALUES (?, ?, ?, ?)",
            [(kind, min(a, b), max(a, b), now) for a, b in pairs if a != b],
        )

    def remove_links_within(self, tx: Transaction, kind: LinkKind, face_ids: list[int]) -> None:
        """Delete every ``kind`` link whose two faces are both in ``face_ids``."""
        db = _connection(tx)
        db.execute("CREATE TEMP TABLE IF NOT EXISTS chosen (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM chosen")
        db.executemany("INSERT OR IGNORE INTO chosen VALUES (?)", [(int(f),) for f in face_ids])
        db.execute(
            "DELETE FROM links WHERE kind = ? AND face_a IN (SELECT id FROM chosen) "
            "AND face_b IN (SELECT id FROM chosen)",
            (kind,),
        )
        db.execute("DELETE FROM chosen")

    def remove_links_of(self, tx: Transaction, kind: LinkKind, face_id: int) -> None:
        db = _connection(tx)
        db.execute(
            "DELETE FROM links WHERE kind = ? AND (face_a = ? OR face_b = ?)",
            (kind, face_id, face_id),
        )

    def log(self, tx: Transaction, action: str, detail: dict[str, Any]) -> None:
        db = _connection(tx)
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
            photos = cursor.execute("SELECT COUNT(*) FROM photos WHERE state = 'done'").fetchone()[
                0
            ]
            faces = cursor.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
            waiting = cursor.execute(
                "SELECT COUNT(*) FROM faces WHERE group_id IS NULL"
            ).fetchone()[0]
            groups = cursor.execute("SELECT COUNT(*) FROM groups").fetchone()[0]
        return {"photos": photos, "faces": faces, "ungrouped": waiting, "groups": groups}
