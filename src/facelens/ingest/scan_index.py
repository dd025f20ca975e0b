"""The scan index: one SQLite file with every item's state and every face found.

``items`` holds one row per work item (its absolute path) with its state:
``pending`` until processed, then ``done`` (with the number of faces) or
``failed`` (with the reason). An item's faces and its new state are written
in one transaction, so after a crash an item is either fully recorded or
still pending: a resumed run processes exactly the pending items, and
nothing is recorded twice or lost.

``faces`` holds, per face: the item, the frame (index and time in seconds,
for videos), the box ``[x, y, width, height]`` in pixels, detector score,
quality and the template (float32 little-endian). The embedder is recorded
once; a scan index of another embedder is refused.

With the gallery's key (``cipher``; the CLI passes the key in force, as for the
gallery) a new scan index stores each template only as AES-256-GCM ciphertext
bound to the index, the face and its item, and then needs that key to be
opened (the rules of :func:`facelens.gallery.protection.side_store_cipher`).

A file of another kind (a gallery, a library) is refused before anything is
written to it, by the tables it holds.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from facelens.errors import GalleryError, GalleryModelMismatchError
from facelens.gallery.protection import GalleryCipher, RowSealer, side_store_cipher
from facelens.ingest.process import ItemResult
from facelens.ingest.sources import ItemKind, WorkItem
from facelens.io.private_files import make_private_dir
from facelens.io.sqlite_files import open_sqlite_file, other_kind

__all__ = ["ItemCounts", "ScanFaces", "ScanIndex", "refuse_other_kind"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    faces INTEGER,
    frames INTEGER,
    error TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_status ON items(status, id);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    frame_index INTEGER NOT NULL,
    time REAL,
    x REAL NOT NULL, y REAL NOT NULL, width REAL NOT NULL, height REAL NOT NULL,
    detector_score REAL NOT NULL,
    quality REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_by_item ON faces(item_id);
"""

# What to do instead, for a file of another kind given as the scan index.
_INSTEAD = {
    "gallery": "pass it as --gallery (or give another --scan)",
    "library": (
        "use it without --scan (it is found beside the --gallery it belongs to, or through "
        "$FACELENS_LIBRARY), or give another --scan"
    ),
    "service state": "give another --scan",
}


def refuse_other_kind(db: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`GalleryError` when ``db`` (opened from ``path``) is a gallery, a library
    or another facelens file rather than a scan index, saying what to pass instead."""
    kind = other_kind(db, "scan index")
    if kind is not None:
        raise GalleryError(f"{path} is a facelens {kind}, not a scan index: {_INSTEAD[kind]}")


@dataclass(frozen=True)
class ItemCounts:
    """How many items are in each state."""

    pending: int
    done: int
    failed: int

    @property
    def total(self) -> int:
        return self.pending + self.done + self.failed


@dataclass(frozen=True, eq=False)
class ScanFaces:
    """Every face of a scan index, ready for search: parallel arrays, one row per face."""

    face_ids: np.ndarray  # (F,) int64
    sources: list[str]  # (F,) the item (file) each face was found in
    frame_index: np.ndarray  # (F,) int64, -1 for still images
    time: np.ndarray  # (F,) seconds into the video, NaN for still images
    boxes: np.ndarray  # (F, 4) x, y, width, height in pixels
    qualities: np.ndarray  # (F,)
    vectors: np.ndarray  # (F, D) float32 unit-norm


class ScanIndex:
    """The scan index file (see the module docstring).

    Args:
        path: the SQLite file (created with its folder if missing).
        model_id: the embedder whose templates it holds.
        cipher: the gallery's key; see the module docstring.
    """

    def __init__(
        self, path: str | Path, model_id: str, *, cipher: GalleryCipher | None = None
    ) -> None:
        self.path = Path(path)
        make_private_dir(self.path.parent)
        self._lock = threading.RLock()
        try:
            self._db = open_sqlite_file(self.path, "scan index")
            self._refuse_other_kind()
            self._db.executescript(_SCHEMA)
            with self._write() as db:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('model_id', ?)", (model_id,))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('index_id', ?)", (uuid.uuid4().hex,))
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                stored = meta["model_id"]
                has_faces = db.execute("SELECT 1 FROM faces LIMIT 1").fetchone() is not None
                checked, marks = side_store_cipher(
                    str(self.path), meta, meta["index_id"], cipher, has_faces
                )
                db.executemany("INSERT INTO meta VALUES (?, ?)", list(marks.items()))
        except sqlite3.DatabaseError as exc:
            raise GalleryError(
                f"{self.path}: not a facelens scan index or damaged ({exc})"
            ) from exc
        if stored != model_id:
            raise GalleryModelMismatchError(
                f"{self.path} holds templates made by {stored}; search or add to it with "
                f"--embedder {stored}, or start a new scan index"
            )
        self.model_id = model_id
        self._sealer = RowSealer(checked, meta["index_id"])

    @property
    def encrypted(self) -> bool:
        return self._sealer.cipher is not None

    def _refuse_other_kind(self) -> None:
        """Raise :class:`GalleryError` (and close) when the file is a gallery, a library or
        another facelens file rather than a scan index (a new empty file passes)."""
        try:
            with self._lock:
                refuse_other_kind(self._db, self.path)
        except GalleryError:
            self._db.close()
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def add_items(self, items: Iterable[WorkItem]) -> int:
        """Register items (those already known keep their state); returns how many are new."""
        now = _now()
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO items (source, kind, updated_at) VALUES (?, ?, ?)",
                [(item.source, item.kind, now) for item in items],
            )
            return db.total_changes - before

    def pending(self, limit: int | None = None) -> list[WorkItem]:
        """Items not processed yet, in the order they were registered."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source, kind FROM items WHERE status = 'pending' ORDER BY id LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [WorkItem(str(r[0]), _kind(str(r[1]))) for r in rows]

    def retry_failed(self) -> int:
        """Put failed items back to pending; returns how many."""
        with self._write() as db:
            return db.execute(
                "UPDATE items SET status = 'pending', error = NULL WHERE status = 'failed'"
            ).rowcount

    def record(self, result: ItemResult) -> None:
        """Store an item's faces and mark it done (or failed) in one transaction.

        An item that is not pending (already recorded) is left as it is.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT id, status FROM items WHERE source = ?", (result.source,)
            ).fetchone()
            if row is None or row[1] != "pending":
                return
            item_id = int(row[0])
            # ids chosen inside the transaction, so each template is sealed with its own id
            first_id = int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM faces").fetchone()[0])
            db.executemany(
                "INSERT INTO faces (id, item_id, frame_index, time, x, y, width, height, "
                "detector_score, quality, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        first_id + i,
                        item_id,
                        int(result.frame_index[i]),
                        None if np.isnan(result.time[i]) else float(result.time[i]),
                        *(float(v) for v in result.boxes[i]),
                        float(result.detector_scores[i]),
                        float(result.qualities[i]),
                        self._sealer.seal(
                            np.ascontiguousarray(result.vectors[i], dtype="<f4").tobytes(),
                            first_id + i,
                            item_id,
                            "vector",
                        ),
                    )
                    for i in range(result.count)
                ],
            )
            db.execute(
                "UPDATE items SET status = ?, faces = ?, frames = ?, error = ?, updated_at = ? "
                "WHERE id = ?",
                (
                    "failed" if result.error else "done",
                    result.count,
                    result.frames,
                    result.error,
                    _now(),
                    item_id,
                ),
            )

    def counts(self) -> ItemCounts:
        with self._lock:
            found = dict(
                self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall()
            )
        return ItemCounts(
            int(found.get("pending", 0)), int(found.get("done", 0)), int(found.get("failed", 0))
        )

    def failures(self) -> list[tuple[str, str]]:
        """``(source, reason)`` of every failed item."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source, error FROM items WHERE status = 'failed' ORDER BY id"
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def faces(self) -> ScanFaces:
        """Every face recorded, in id order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT f.id, i.source, f.frame_index, f.time, f.x, f.y, f.width, f.height, "
                "f.quality, f.vector, f.item_id FROM faces f JOIN items i ON i.id = f.item_id "
                "ORDER BY f.id"
            ).fetchall()
        plain = [self._sealer.open(r[9], r[0], r[10], "vector") or b"" for r in rows]
        dimension = len(plain[0]) // 4 if rows else 0
        return ScanFaces(
            face_ids=np.array([r[0] for r in rows], np.int64),
            sources=[str(r[1]) for r in rows],
            frame_index=np.array([r[2] for r in rows], np.int64),
            time=np.array([np.nan if r[3] is None else r[3] for r in rows], np.float64),
            boxes=np.array([r[4:8] for r in rows], np.float32).reshape(-1, 4),
            qualities=np.array([r[8] for r in rows], np.float32),
            vectors=np.frombuffer(b"".join(plain), "<f4")
            .reshape(len(rows), dimension)
            .astype(np.float32),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _kind(text: str) -> ItemKind:
    return "video" if text == "video" else "image"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
