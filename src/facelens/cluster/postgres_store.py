"""The library of a PostgreSQL gallery, in the gallery's own database.

The same library as the SQLite file (:mod:`facelens.cluster.store`: items with
their state, faces with box, video frame and time, template and crop, groups,
"not this person", undo, constraints and the corrections log), in the tables
``facelens.library_*`` that migration 4 (:mod:`facelens.gallery.migrations`)
adds beside the gallery's. It satisfies
:class:`~facelens.cluster.library_store.LibraryStore`.

* Every write is one transaction that first takes a transaction-scoped
  advisory lock: writers of every process queue (as SQLite's ``BEGIN IMMEDIATE``).
  :meth:`PostgresLibraryStore.exclusive` holds a session advisory lock on a
  connection of its own for multi-step changes (a scan's grouping, a correction).
* With the gallery's key a new or empty library becomes encrypted: each face's
  template and crop are stored only as AES-256-GCM ciphertext bound to the
  library (``library_meta`` ``library_id``), the face and its item
  (:class:`~facelens.gallery.protection.RowSealer`, the SQLite library's rules
  through ``side_store_cipher``). The server never compares library templates:
  grouping and search run in the application.
* Erasing a group or a person deletes their rows, then ``VACUUM FULL`` rewrites
  the library's tables into new files, as the gallery does on erasure (what
  PostgreSQL cannot promise, e.g. its write-ahead log, is in docs/architecture.md).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np

from facelens.cluster.library_store import LinkKind, Transaction
from facelens.cluster.store import (
    FACE_COLUMNS,
    SCHEMA_VERSION,
    FaceMatrix,
    FaceRecord,
    GroupRecord,
    ItemRecord,
    ItemState,
    ItemTally,
    NewFace,
    face_matrix_of,
    face_record,
    naming,
)
from facelens.errors import (
    ClusterError,
    ClusterFaceNotFoundError,
    ClusterModelMismatchError,
    GroupNotFoundError,
    LibraryItemNotFoundError,
)
from facelens.gallery.protection import GalleryCipher, RowSealer, side_store_cipher
from facelens.types import FloatArray

__all__ = ["PostgresLibraryStore", "postgres_library_exists"]

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - the postgres extra is not installed
    raise ClusterError(
        "the PostgreSQL library needs psycopg: pip install 'facelens[postgres]'"
    ) from exc

from facelens.gallery.migrations import apply_migrations
from facelens.gallery.postgres import redact_url

# Advisory lock keys: "fl-libwr" (one write transaction) and "fl-libex" (exclusive) in ASCII.
WRITE_LOCK_KEY = 0x666C2D6C69627772
EXCLUSIVE_LOCK_KEY = 0x666C2D6C69626578

_SCRUBBED = (
    "facelens.library_faces",
    "facelens.library_groups",
    "facelens.library_not_person",
    "facelens.library_links",
    "facelens.library_undo",
    "facelens.library_corrections",
)

Connection = psycopg.Connection[Any]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _connection(tx: Transaction) -> Connection:
    """The psycopg connection behind a transaction of :meth:`PostgresLibraryStore.write`."""
    return cast(Connection, tx)


def _many(db: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with db.cursor() as cursor:
            cursor.executemany(sql.encode(), rows)


def postgres_library_exists(url: str) -> bool:
    """True when the database at ``url`` holds a library (one was opened there)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as db:
            exists = db.execute("SELECT to_regclass('facelens.library_meta')").fetchone()
            if exists is None or exists[0] is None:
                return False
            row = db.execute(
                "SELECT 1 FROM facelens.library_meta WHERE key = 'library_id'"
            ).fetchone()
    except psycopg.Error as exc:
        raise ClusterError(f"cannot read the library in {redact_url(url)}: {exc}") from exc
    return row is not None


class PostgresLibraryStore:
    """The library in a PostgreSQL gallery's database; see the module docstring.

    Args:
        url: the gallery's libpq URL (``postgresql://user:password@host:port/database``).
        model_id: the embedder whose templates it holds (another model's is refused).
        cipher: the gallery's key (a new or empty library becomes encrypted).
        connect_timeout: seconds to wait for the server.
    """

    def __init__(
        self,
        url: str,
        model_id: str,
        *,
        cipher: GalleryCipher | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._label = f"the library in {redact_url(url)}"
        self._timeout = max(1, round(connect_timeout))
        self._lock = threading.RLock()
        self._exclusive_lock = threading.RLock()  # nested holds count in the session too
        self._lock_db: Connection | None = None
        self._cipher: GalleryCipher | None = None
        self._sealer = RowSealer(None, "")
        self._db = self._connect()
        try:
            apply_migrations(self._db)
            self._model_id = self._initialise(model_id, cipher)
        except psycopg.Error as exc:
            self._db.close()
            raise ClusterError(f"{self._label}: cannot open it ({exc})") from exc
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=self._timeout)
        except psycopg.Error as exc:
            raise ClusterError(f"cannot connect to {self._label}: {exc}") from exc

    def _connection(self) -> Connection:
        """The open connection, re-established once if the server dropped it."""
        if self._db.closed or self._db.broken:
            self._db = self._connect()
        return self._db

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def encrypted(self) -> bool:
        return self._cipher is not None

    @property
    def label(self) -> str:
        return self._label

    @property
    def public_name(self) -> str:
        return "the gallery's database"

    def _initialise(self, model_id: str, cipher: GalleryCipher | None) -> str:
        with self.write() as tx:
            db = _connection(tx)
            _many(
                db,
                "INSERT INTO facelens.library_meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                [
                    ("schema_version", SCHEMA_VERSION),
                    ("model_id", model_id),
                    ("library_id", uuid.uuid4().hex),
                ],
            )
            meta = {
                str(k): str(v)
                for k, v in db.execute("SELECT key, value FROM facelens.library_meta").fetchall()
            }
            has_faces = db.execute("SELECT 1 FROM facelens.library_faces LIMIT 1").fetchone()
            self._cipher, marks = side_store_cipher(
                self._label, meta, meta["library_id"], cipher, has_faces is not None
            )
            _many(db, "INSERT INTO facelens.library_meta VALUES (%s, %s)", list(marks.items()))
            self._sealer = RowSealer(self._cipher, meta["library_id"])
        stored = meta["model_id"]
        if stored != model_id:
            raise ClusterModelMismatchError(
                f"{self._label} holds templates made by {stored}, not {model_id}; open it with "
                f"--embedder {stored}, or cluster into a library file (--index)"
            )
        return stored

    # --- transactions ------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._lock:
            try:
                yield self._connection()
            except psycopg.Error as exc:
                raise ClusterError(f"{self._label}: cannot read ({exc})") from exc

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """One transaction, queued behind every other writer: all of it is stored, or none."""
        with self._lock:
            try:
                db = self._connection()
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
                    yield db
            except psycopg.Error as exc:
                raise ClusterError(f"{self._label}: cannot write ({exc})") from exc

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held for a multi-step change: a session advisory lock on a connection of its
        own, so the processes that share the library take turns."""
        with self._exclusive_lock:
            if self._lock_db is None or self._lock_db.closed or self._lock_db.broken:
                self._lock_db = self._connect()
            lock_db = self._lock_db
            lock_db.execute("SELECT pg_advisory_lock(%s)", (EXCLUSIVE_LOCK_KEY,))
            try:
                yield
            finally:
                if not lock_db.closed and not lock_db.broken:
                    lock_db.execute("SELECT pg_advisory_unlock(%s)", (EXCLUSIVE_LOCK_KEY,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._exclusive_lock:
            if self._lock_db is not None:
                self._lock_db.close()
                self._lock_db = None

    def get_meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute(
                "SELECT value FROM facelens.library_meta WHERE key = %s", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as tx:
            _connection(tx).execute(
                "INSERT INTO facelens.library_meta VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # --- items and faces ---------------------------------------------------------------

    def has_photo(self, sha256: str) -> bool:
        with self._read() as db:
            row = db.execute(
                "SELECT 1 FROM facelens.library_items WHERE sha256 = %s", (sha256,)
            ).fetchone()
        return row is not None

    def add_photo(
        self, source: str, sha256: str, width: int, height: int, faces: list[NewFace]
    ) -> list[int]:
        """Store a photo and its faces (waiting for a group) in one transaction; their ids."""
        now = _now()
        with self.write() as tx:
            db = _connection(tx)
            row = db.execute(
                "INSERT INTO facelens.library_items (source, sha256, width, height, faces, "
                "added_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (source, sha256, width, height, len(faces), now),
            ).fetchone()
            assert row is not None
            return self._insert_faces(db, int(row[0]), faces, now)

    def _insert_faces(
        self, db: Connection, item_id: int, faces: list[NewFace], now: str
    ) -> list[int]:
        ids = []
        for face in faces:
            # the id first, so each row is sealed with its own id
            row = db.execute("SELECT nextval('facelens.library_faces_id_seq')").fetchone()
            assert row is not None
            face_id = int(row[0])
            vector = np.ascontiguousarray(face.vector, dtype=np.float32).tobytes()
            db.execute(
                "INSERT INTO facelens.library_faces (id, item_id, x, y, w, h, quality, vector, "
                "crop, added_at, frame_index, time) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    face_id,
                    item_id,
                    face.box.x,
                    face.box.y,
                    face.box.width,
                    face.box.height,
                    face.quality,
                    self._sealer.seal(vector, face_id, item_id, "vector"),
                    self._sealer.seal(face.crop_jpeg, face_id, item_id, "crop"),
                    now,
                    face.frame_index,
                    face.time,
                ),
            )
            ids.append(face_id)
        return ids

    def register_items(self, items: Iterable[tuple[str, str]]) -> int:
        """Register ``(source, kind)`` items as pending; a source already known keeps its
        state. Returns how many are new."""
        wanted = dict(items)  # one row per source, the first kind given
        if not wanted:
            return 0
        now = _now()
        with self.write() as tx:
            db = _connection(tx)
            known = {
                str(r[0])
                for r in db.execute(
                    "SELECT source FROM facelens.library_items WHERE source = ANY(%s)",
                    (list(wanted),),
                ).fetchall()
            }
            new = [(s, k) for s, k in wanted.items() if s not in known]
            _many(
                db,
                "INSERT INTO facelens.library_items (source, sha256, width, height, faces, "
                "added_at, kind, state) VALUES (%s, %s, 0, 0, 0, %s, %s, 'pending')",
                [(s, f"pending:{uuid.uuid4().hex}", now, k) for s, k in new],
            )
        return len(new)

    def pending_items(self, limit: int | None = None) -> list[tuple[str, str]]:
        """``(source, kind)`` of the items waiting to be read, in the order registered."""
        with self._read() as db:
            rows = db.execute(
                "SELECT source, kind FROM facelens.library_items WHERE state = 'pending' "
                "ORDER BY id LIMIT %s",
                (limit,),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def retry_failed(self) -> int:
        """Put failed items back to pending; returns how many."""
        with self.write() as tx:
            cursor = _connection(tx).execute(
                "UPDATE facelens.library_items SET state = 'pending', error = NULL "
                "WHERE state = 'failed'"
            )
            return int(cursor.rowcount)

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
        with self.write() as tx:
            db = _connection(tx)
            row = db.execute(
                "SELECT id FROM facelens.library_items WHERE source = %s AND state = 'pending' "
                "ORDER BY id LIMIT 1",
                (source,),
            ).fetchone()
            if row is None:
                return []
            item_id = int(row[0])
            if error is not None:
                db.execute(
                    "UPDATE facelens.library_items SET state = 'failed', error = %s, "
                    "frames = %s, added_at = %s WHERE id = %s",
                    (error[:1000], frames, now, item_id),
                )
                return []
            twin = None
            if sha256 is not None:
                twin = db.execute(
                    "SELECT id FROM facelens.library_items WHERE sha256 = %s AND id != %s",
                    (sha256, item_id),
                ).fetchone()
            if twin is not None:
                db.execute(
                    "UPDATE facelens.library_items SET state = 'done', duplicate_of = %s, "
                    "added_at = %s WHERE id = %s",
                    (int(twin[0]), now, item_id),
                )
                return []
            db.execute(
                "UPDATE facelens.library_items SET state = 'done', "
                "sha256 = COALESCE(%s, sha256), width = %s, height = %s, faces = %s, "
                "frames = %s, error = NULL, added_at = %s WHERE id = %s",
                (sha256, width, height, len(faces), frames, now, item_id),
            )
            return self._insert_faces(db, item_id, faces, now)

    def item_counts(self) -> ItemTally:
        with self._read() as db:
            found = {
                str(s): int(n)
                for s, n in db.execute(
                    "SELECT state, COUNT(*) FROM facelens.library_items GROUP BY state"
                ).fetchall()
            }
        return ItemTally(found.get("pending", 0), found.get("done", 0), found.get("failed", 0))

    def items(self, state: ItemState | None = None, limit: int = -1) -> list[ItemRecord]:
        """Items (every one, or those in ``state``), in the order registered."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, source, kind, state, faces, error FROM facelens.library_items "
                "WHERE %(state)s::text IS NULL OR state = %(state)s ORDER BY id LIMIT %(limit)s",
                {"state": state, "limit": None if limit < 0 else limit},
            ).fetchall()
        return [ItemRecord(int(r[0]), r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]

    def item(self, item_id: int) -> ItemRecord:
        with self._read() as db:
            row = db.execute(
                "SELECT id, source, kind, state, faces, error FROM facelens.library_items "
                "WHERE id = %s",
                (item_id,),
            ).fetchone()
        if row is None:
            raise LibraryItemNotFoundError(f"no item {item_id} in the library")
        return ItemRecord(int(row[0]), row[1], row[2], row[3], int(row[4]), row[5])

    def _vector(self, value: bytes, face_id: int, item_id: int) -> FloatArray:
        plain = self._sealer.open(value, face_id, item_id, "vector")
        assert plain is not None
        return np.frombuffer(plain, dtype=np.float32)

    def face_matrix(self) -> FaceMatrix:
        """Every face's id, item, group (-1: none) and template."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, item_id, COALESCE(group_id, -1), vector, frame_index "
                "FROM facelens.library_faces ORDER BY id"
            ).fetchall()
        return face_matrix_of(rows, lambda r: self._vector(r[3], int(r[0]), int(r[1])))

    def face_version(self) -> tuple[int, int]:
        """``(faces, highest face id)``: changes whenever faces are added or erased."""
        with self._read() as db:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM facelens.library_faces"
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def faces(
        self, face_ids: Iterable[int] | None = None, group_id: int | None = None
    ) -> list[FaceRecord]:
        """Faces by id (each must exist), or every face of a group, or every face."""
        query = (
            f"SELECT {FACE_COLUMNS.format(item='f.item_id')} FROM facelens.library_faces f "
            "JOIN facelens.library_items p ON p.id = f.item_id"
        )
        with self._read() as db:
            if face_ids is not None:
                wanted = list(dict.fromkeys(int(i) for i in face_ids))
                found = {
                    int(r[0]): r
                    for r in db.execute(query + " WHERE f.id = ANY(%s)", (wanted,)).fetchall()
                }
                missing = [i for i in wanted if i not in found]
                if missing:
                    raise ClusterFaceNotFoundError(
                        f"no face {missing[0]} in the library; `facelens cluster show` lists them"
                    )
                rows = [found[i] for i in wanted]
            elif group_id is not None:
                rows = db.execute(
                    query + " WHERE f.group_id = %s ORDER BY f.quality DESC, f.id", (group_id,)
                ).fetchall()
            else:
                rows = db.execute(query + " ORDER BY f.id").fetchall()
        return [face_record(r) for r in rows]

    def crop(self, face_id: int) -> bytes | None:
        with self._read() as db:
            row = db.execute(
                "SELECT crop, item_id FROM facelens.library_faces WHERE id = %s", (face_id,)
            ).fetchone()
        if row is None:
            raise ClusterFaceNotFoundError(f"no face {face_id} in the library")
        return self._sealer.open(row[0], face_id, int(row[1]), "crop")

    def vectors(self, face_ids: list[int]) -> FloatArray:
        """Templates of ``face_ids``, in that order, ``(len, D)`` float32."""
        with self._read() as db:
            found = {
                int(r[0]): r
                for r in db.execute(
                    "SELECT id, vector, item_id FROM facelens.library_faces WHERE id = ANY(%s)",
                    ([int(i) for i in face_ids],),
                ).fetchall()
            }
        missing = [i for i in face_ids if int(i) not in found]
        if missing:
            raise ClusterFaceNotFoundError(f"no face {missing[0]} in the library")
        rows = [found[int(i)] for i in face_ids]
        return np.stack([self._vector(r[1], int(r[0]), int(r[2])) for r in rows])

    def set_enrolled(
        self,
        tx: Transaction,
        face_ids: list[int],
        template_ids: list[int | None],
        name: str | None,
    ) -> None:
        """Record the gallery template (and its person) made from each face; ``None`` clears it."""
        _many(
            _connection(tx),
            "UPDATE facelens.library_faces SET template_id = %s, enrolled_as = %s WHERE id = %s",
            [
                (t, None if t is None else name, f)
                for f, t in zip(face_ids, template_ids, strict=True)
            ],
        )

    def rename_enrolled(self, tx: Transaction, old: str, new: str) -> None:
        _connection(tx).execute(
            "UPDATE facelens.library_faces SET enrolled_as = %s WHERE enrolled_as = %s", (new, old)
        )

    # --- groups --------------------------------------------------------------------------

    _GROUP_SIZES = (
        "SELECT g.id, g.name, COUNT(f.id) AS n, g.hidden FROM facelens.library_groups g "
        "{join} facelens.library_faces f ON f.group_id = g.id {where} "
        "GROUP BY g.id ORDER BY n DESC, g.id"
    )

    @staticmethod
    def _group(row: Sequence[Any]) -> GroupRecord:
        return GroupRecord(int(row[0]), row[1], int(row[2]), bool(row[3]))

    def groups(self) -> list[GroupRecord]:
        """Every group with its size, largest first."""
        with self._read() as db:
            rows = db.execute(self._GROUP_SIZES.format(join="LEFT JOIN", where="")).fetchall()
        return [self._group(r) for r in rows]

    def unnamed_groups(
        self, offset: int = 0, limit: int = 50, *, hidden: bool = False
    ) -> tuple[int, list[GroupRecord]]:
        """A page of the groups nobody named (the hidden ones with ``hidden``), largest
        first, and how many there are in all."""
        where = "WHERE g.name IS NULL AND g.hidden = %s"
        with self._read() as db:
            total = db.execute(
                f"SELECT COUNT(*) FROM facelens.library_groups g {where}".encode(), (hidden,)
            ).fetchone()
            rows = db.execute(
                (self._GROUP_SIZES.format(join="JOIN", where=where) + " LIMIT %s OFFSET %s"),
                (hidden, limit, offset),
            ).fetchall()
        assert total is not None
        return int(total[0]), [self._group(r) for r in rows]

    def sample_faces(self, group_id: int, count: int) -> list[int]:
        """Ids of the ``count`` best faces (highest quality) of a group."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id FROM facelens.library_faces WHERE group_id = %s "
                "ORDER BY quality DESC, id LIMIT %s",
                (group_id, count),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def set_hidden(self, tx: Transaction, group_id: int, hidden: bool) -> None:
        _connection(tx).execute(
            "UPDATE facelens.library_groups SET hidden = %s WHERE id = %s", (hidden, group_id)
        )

    def group(self, group_id: int) -> GroupRecord:
        with self._read() as db:
            row = db.execute(
                "SELECT g.id, g.name, (SELECT COUNT(*) FROM facelens.library_faces "
                "WHERE group_id = g.id), g.hidden FROM facelens.library_groups g WHERE g.id = %s",
                (group_id,),
            ).fetchone()
        if row is None:
            raise GroupNotFoundError(
                f"no group {group_id} in the library; `facelens cluster show` lists them"
            )
        return self._group(row)

    def group_named(self, name: str) -> GroupRecord | None:
        with self._read() as db:
            row = db.execute(
                "SELECT id FROM facelens.library_groups WHERE name = %s", (name,)
            ).fetchone()
        return None if row is None else self.group(int(row[0]))

    def new_group(self, tx: Transaction) -> int:
        row = (
            _connection(tx)
            .execute(
                "INSERT INTO facelens.library_groups (created_at) VALUES (%s) RETURNING id",
                (_now(),),
            )
            .fetchone()
        )
        assert row is not None
        return int(row[0])

    def assign(self, tx: Transaction, group_id: int | None, face_ids: Iterable[int]) -> None:
        _connection(tx).execute(
            "UPDATE facelens.library_faces SET group_id = %s WHERE id = ANY(%s)",
            (group_id, [int(f) for f in face_ids]),
        )

    def _scrub(self) -> None:
        """Rewrite the library's tables (``VACUUM FULL``) so erased rows leave the files."""
        with self._lock:
            db = self._connection()
            try:
                for table in _SCRUBBED:
                    db.execute(f"VACUUM (FULL, ANALYZE) {table}".encode())
            except psycopg.Error as exc:
                raise ClusterError(
                    f"{self._label}: the rows are deleted, but VACUUM FULL failed ({exc}); run "
                    "it as the table owner to remove the dead row versions"
                ) from exc

    def forget_group(self, group_id: int) -> int:
        """Erase a group: its faces (templates, crops, constraints) and the group itself.

        Their items stay recorded, so a later scan does not index those faces
        again; the tables are then rewritten. Returns the faces erased."""
        group = self.group(group_id)
        with self.write() as tx:
            db = _connection(tx)
            count = db.execute(
                "DELETE FROM facelens.library_faces WHERE group_id = %s", (group.id,)
            ).rowcount
            db.execute("DELETE FROM facelens.library_groups WHERE id = %s", (group.id,))
            self.log(tx, "forget", {"group": group.id, "faces": count})
        self._scrub()
        return int(count)

    def forget_person(self, name: str) -> int:
        """Erase every trace of a person: the faces of the group named ``name`` (templates,
        crops, constraints), every "not this person" said about them, the corrections that
        name them and the undo record; then rewrite the tables. Returns the faces erased."""
        group = self.group_named(name)
        count = 0
        with self.write() as tx:
            db = _connection(tx)
            if group is not None:
                count = db.execute(
                    "DELETE FROM facelens.library_faces WHERE group_id = %s", (group.id,)
                ).rowcount
                db.execute("DELETE FROM facelens.library_groups WHERE id = %s", (group.id,))
            db.execute("DELETE FROM facelens.library_not_person WHERE name = %s", (name,))
            db.execute("DELETE FROM facelens.library_undo")
            db.execute(
                "UPDATE facelens.library_faces SET enrolled_as = NULL WHERE enrolled_as = %s",
                (name,),
            )
            rows = db.execute("SELECT id, detail FROM facelens.library_corrections").fetchall()
            db.execute(
                "DELETE FROM facelens.library_corrections WHERE id = ANY(%s)",
                (naming(rows, name),),
            )
            if group is not None:
                self.log(tx, "forget", {"group": group.id, "faces": count})
        self._scrub()
        return int(count)

    def add_not_person(self, tx: Transaction, face_id: int, name: str) -> None:
        _connection(tx).execute(
            "INSERT INTO facelens.library_not_person VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (face_id, name, _now()),
        )

    def remove_not_person(self, tx: Transaction, face_ids: Iterable[int], name: str) -> None:
        """Withdraw "not ``name``" from these faces (someone since said they are)."""
        _many(
            _connection(tx),
            "DELETE FROM facelens.library_not_person WHERE face_id = %s AND name = %s",
            [(int(f), name) for f in face_ids],
        )

    def not_person(self, name: str) -> set[int]:
        """The faces someone said are not ``name``."""
        with self._read() as db:
            rows = db.execute(
                "SELECT face_id FROM facelens.library_not_person WHERE name = %s", (name,)
            ).fetchall()
        return {int(r[0]) for r in rows}

    # --- undo: the state before the last correction ----------------------------------------

    def save_undo(self, tx: Transaction, action: str) -> None:
        """Keep the groups, face placements, constraints and "not this person" marks as
        they are now, so the next correction can be undone (one level)."""
        db = _connection(tx)

        def rows(sql: str) -> list[list[Any]]:
            return [list(r) for r in db.execute(sql.encode()).fetchall()]

        snapshot = {
            "groups": rows("SELECT id, name, created_at, hidden FROM facelens.library_groups"),
            "faces": rows(
                "SELECT id, group_id FROM facelens.library_faces WHERE group_id IS NOT NULL"
            ),
            "links": rows("SELECT kind, face_a, face_b, created_at FROM facelens.library_links"),
            "not_person": rows("SELECT face_id, name, created_at FROM facelens.library_not_person"),
        }
        db.execute(
            "INSERT INTO facelens.library_undo VALUES (1, %s, %s, %s) ON CONFLICT (id) "
            "DO UPDATE SET action = excluded.action, snapshot = excluded.snapshot, "
            "created_at = excluded.created_at",
            (action, json.dumps(snapshot), _now()),
        )

    def undo_record(self) -> tuple[str, str, str] | None:
        """The saved state (action, snapshot, time), to put back with :meth:`put_undo_record`
        when a later correction is refused."""
        with self._read() as db:
            row = db.execute(
                "SELECT action, snapshot, created_at FROM facelens.library_undo WHERE id = 1"
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def put_undo_record(self, tx: Transaction, record: tuple[str, str, str]) -> None:
        """Put back an undo record read with :meth:`undo_record`."""
        _connection(tx).execute(
            "INSERT INTO facelens.library_undo VALUES (1, %s, %s, %s) ON CONFLICT (id) "
            "DO UPDATE SET action = excluded.action, snapshot = excluded.snapshot, "
            "created_at = excluded.created_at",
            record,
        )

    def restore_undo(self) -> str | None:
        """Put back the state saved before the last correction; the correction's name, or
        None when there is nothing to undo. Faces erased since stay erased."""
        with self.write() as tx:
            db = _connection(tx)
            row = db.execute(
                "SELECT action, snapshot FROM facelens.library_undo WHERE id = 1"
            ).fetchone()
            if row is None:
                return None
            snapshot = json.loads(row[1])
            faces = {int(r[0]) for r in db.execute("SELECT id FROM facelens.library_faces")}
            db.execute("UPDATE facelens.library_faces SET group_id = NULL")
            db.execute("DELETE FROM facelens.library_links")
            db.execute("DELETE FROM facelens.library_not_person")
            db.execute("UPDATE facelens.library_groups SET name = NULL")
            db.execute("DELETE FROM facelens.library_groups")
            _many(
                db,
                "INSERT INTO facelens.library_groups VALUES (%s, %s, %s, %s)",
                [tuple(g) for g in snapshot["groups"]],
            )
            _many(
                db,
                "UPDATE facelens.library_faces SET group_id = %s WHERE id = %s",
                [(g, f) for f, g in snapshot["faces"] if f in faces],
            )
            _many(
                db,
                "INSERT INTO facelens.library_links VALUES (%s, %s, %s, %s)",
                [tuple(r) for r in snapshot["links"] if r[1] in faces and r[2] in faces],
            )
            _many(
                db,
                "INSERT INTO facelens.library_not_person VALUES (%s, %s, %s)",
                [tuple(r) for r in snapshot["not_person"] if r[0] in faces],
            )
            db.execute("DELETE FROM facelens.library_undo")
            self.drop_empty_groups(tx)
            self.log(tx, "undo", {"undid": row[0]})
        return str(row[0])

    def drop_empty_groups(self, tx: Transaction) -> None:
        """Delete unnamed groups that lost every face."""
        _connection(tx).execute(
            "DELETE FROM facelens.library_groups g WHERE g.name IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM facelens.library_faces f WHERE f.group_id = g.id)"
        )

    def set_name(self, tx: Transaction, group_id: int, name: str | None) -> None:
        _connection(tx).execute(
            "UPDATE facelens.library_groups SET name = %s WHERE id = %s", (name, group_id)
        )

    # --- constraints and the correction log -------------------------------------------------

    def links(self, kind: LinkKind) -> list[tuple[int, int]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT face_a, face_b FROM facelens.library_links WHERE kind = %s", (kind,)
            ).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def add_links(self, tx: Transaction, kind: LinkKind, pairs: Iterable[tuple[int, int]]) -> None:
        now = _now()
        _many(
            _connection(tx),
            "INSERT INTO facelens.library_links VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            list(dict.fromkeys((kind, min(a, b), max(a, b), now) for a, b in pairs if a != b)),
        )

    def remove_links_within(self, tx: Transaction, kind: LinkKind, face_ids: list[int]) -> None:
        """Delete every ``kind`` link whose two faces are both in ``face_ids``."""
        chosen = [int(f) for f in face_ids]
        _connection(tx).execute(
            "DELETE FROM facelens.library_links WHERE kind = %s AND face_a = ANY(%s) "
            "AND face_b = ANY(%s)",
            (kind, chosen, chosen),
        )

    def remove_links_of(self, tx: Transaction, kind: LinkKind, face_id: int) -> None:
        _connection(tx).execute(
            "DELETE FROM facelens.library_links WHERE kind = %s AND (face_a = %s OR face_b = %s)",
            (kind, face_id, face_id),
        )

    def log(self, tx: Transaction, action: str, detail: dict[str, Any]) -> None:
        _connection(tx).execute(
            "INSERT INTO facelens.library_corrections (action, detail, created_at) "
            "VALUES (%s, %s, %s)",
            (action, json.dumps(detail, sort_keys=True), _now()),
        )

    def corrections(self) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id, action, detail, created_at FROM facelens.library_corrections "
                "ORDER BY id"
            ).fetchall()
        return [
            {"id": int(r[0]), "action": r[1], "detail": json.loads(r[2]), "at": r[3]} for r in rows
        ]

    def stats(self) -> dict[str, int]:
        with self._read() as db:
            row = db.execute(
                "SELECT (SELECT COUNT(*) FROM facelens.library_items WHERE state = 'done'), "
                "(SELECT COUNT(*) FROM facelens.library_faces), "
                "(SELECT COUNT(*) FROM facelens.library_faces WHERE group_id IS NULL), "
                "(SELECT COUNT(*) FROM facelens.library_groups)"
            ).fetchone()
        assert row is not None
        return {
            "photos": int(row[0]),
            "faces": int(row[1]),
            "ungrouped": int(row[2]),
            "groups": int(row[3]),
        }
