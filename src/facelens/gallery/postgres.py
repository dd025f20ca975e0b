"""The shared gallery: PostgreSQL with pgvector, for many API workers and large galleries.

Selected by a URL (``--gallery postgresql://user@host/db`` or ``$FACELENS_GALLERY``);
the Python API is the SQLite gallery's (:class:`facelens.gallery.store.GalleryStore`).

* Tables live in the schema ``facelens`` (people, templates, crops, audit, meta,
  calibrations),
  created and upgraded by the versioned migrations of
  :mod:`facelens.gallery.migrations` when the gallery is opened.
* Every write is one transaction that first locks the one-row ``facelens.state``
  and bumps its version: writers from any number of processes queue instead of
  interleaving, a crash leaves all of a write or none of it, and readers know
  when their cached template matrix is stale.
* Templates are pgvector ``vector(D)`` values; the first template fixes ``D``
  and creates an HNSW index (cosine distance), so :meth:`PostgresGallery.nearest`
  searches in the server. Face crops are in their own table.
* With a key (:class:`~facelens.gallery.protection.GalleryCipher`) the gallery
  stores templates and crops only as AES-256-GCM ciphertext. The server then
  cannot compare vectors: search decrypts every template in the application and
  scores them in memory (exact), and there is no HNSW index. docs/architecture.md
  ("PostgreSQL backend") weighs the two and docs/benchmarks.md measures them.
* Erasing a person or a template deletes the rows in one transaction, then
  ``VACUUM FULL`` rewrites the gallery's tables and indexes into new files, so the
  live database files no longer hold the erased bytes (``$FACELENS_POSTGRES_SCRUB=vacuum``
  trades that for speed on large galleries). What PostgreSQL cannot promise
  (write-ahead log, backups, replicas, freed disk blocks) is spelled out in
  docs/architecture.md.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from facelens import settings
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
from facelens.types import FloatArray, Person, StoredTemplate

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "PostgresAuditLog",
    "PostgresGallery",
    "redact_url",
    "stored_model_id",
]

try:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.abc import Buffer
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg.types.json import Jsonb
except ImportError as exc:  # pragma: no cover - the postgres extra is not installed
    raise GalleryError(
        "the PostgreSQL gallery needs psycopg and pgvector: pip install 'facelens[postgres]'"
    ) from exc

from facelens.gallery.migrations import apply_migrations

# HNSW parameters of the template index, chosen by benchmarks/million_pgvector.py on the LFW +
# synthetic gallery (docs/benchmarks.md#pgvector): at 100,000 templates m 32 / ef_construction
# 128 reach recall@1 0.999 at ef_search 200, where m 16 / 64 reach 0.971 (0.989 at 400); the
# price is a slower build (5x) and a larger index (+23%).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
DEFAULT_EF_SEARCH = 200

SCRUB_ENV = settings.POSTGRES_SCRUB.name

_TABLES = ("facelens.people", "facelens.templates", "facelens.crops")


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Neighbour:
    """One template found by :meth:`PostgresGallery.nearest`; ``score`` is the cosine."""

    template_id: int
    person_id: int
    name: str
    score: float


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class PostgresGallery:
    """People and their templates in a PostgreSQL database; see the module docstring.

    Args:
        url: a libpq connection URL, ``postgresql://user:password@host:port/database``.
        model_id: the embedder whose templates this gallery holds.
        cipher: the gallery key. A new (or empty) gallery opened with a key
            becomes encrypted; an encrypted gallery needs its key; a key is
            refused for a gallery that holds plaintext templates.
        ef_search: HNSW candidate list size of :meth:`nearest` (higher: better
            recall, slower).
        scrub: what follows an erase, ``full`` (the default) or ``vacuum``; see
            :meth:`_scrub`. Default: ``$FACELENS_POSTGRES_SCRUB``, else ``full``.
        connect_timeout: seconds to wait for the server.
    """

    def __init__(
        self,
        url: str,
        model_id: str,
        *,
        cipher: GalleryCipher | None = None,
        ef_search: int = DEFAULT_EF_SEARCH,
        scrub: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.scrub = scrub or settings.postgres_scrub()
        if self.scrub not in ("full", "vacuum"):
            raise GalleryError(f"{SCRUB_ENV} must be 'full' or 'vacuum', not {self.scrub!r}")
        self.url = url
        self.label = redact_url(url)
        self.ef_search = int(ef_search)
        self._connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._cache: TemplateMatrix | None = None
        self._cache_version: int | None = None
        self._db = self._connect()
        try:
            apply_migrations(self._db)
        except psycopg.Error as exc:
            self._db.close()
            raise GalleryError(
                f"{self.label}: cannot create or upgrade the gallery schema ({exc}); the "
                "database user needs CREATE on the database, and the pgvector extension must "
                "be installed (CREATE EXTENSION vector, by an administrator if need be)"
            ) from exc
        try:
            register_vector(self._db)
            self._model_id, self._gallery_id, self._cipher = self._initialise(model_id, cipher)
        except BaseException:
            self._db.close()
            raise

    # -- connection and transactions -------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
            )
        except psycopg.Error as exc:
            raise GalleryError(f"cannot connect to the gallery {self.label}: {exc}") from exc
        connection.execute(f"SET hnsw.ef_search = {int(self.ef_search)}".encode())
        return connection

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection, re-established once if the server dropped it."""
        if self._db.closed or self._db.broken:
            self._db = self._connect()
            register_vector(self._db)
        return self._db

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            try:
                yield self._connection()
            except psycopg.Error as exc:
                raise GalleryError(f"{self.label}: cannot read ({exc})") from exc

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One write transaction, queued behind every other writer by the state row lock."""
        with self._lock:
            try:
                db = self._connection()
                with db.transaction():
                    db.execute("UPDATE facelens.state SET version = version + 1")
                    yield db
            except psycopg.Error as exc:
                raise GalleryError(f"{self.label}: cannot write ({exc})") from exc

    # -- opening ----------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def encrypted(self) -> bool:
        return self._cipher is not None

    @property
    def path(self) -> None:
        """None: the gallery lives on its server, not in a file of its own."""
        return None

    @property
    def search_server(self) -> PostgresGallery | None:
        """This gallery in the clear (its server's HNSW index proposes candidates); None
        when encrypted (the templates are decrypted and scored in this process)."""
        return None if self._cipher is not None else self

    def _initialise(
        self, model_id: str, cipher: GalleryCipher | None
    ) -> tuple[str, str, GalleryCipher | None]:
        with self._write() as db:
            db.execute(
                "INSERT INTO facelens.meta VALUES ('model_id', %s), ('gallery_id', %s), "
                "('encryption', 'none') ON CONFLICT (key) DO NOTHING",
                (model_id, uuid.uuid4().hex),
            )
            meta = dict(db.execute("SELECT key, value FROM facelens.meta").fetchall())
            if meta["model_id"] != model_id:
                raise GalleryModelMismatchError(
                    f"{self.label} holds templates made by {meta['model_id']}, but this facelens "
                    f"embeds with {model_id}; templates of different models cannot be compared. "
                    f"Open it with the model {meta['model_id']}, or enroll the people again into "
                    "a new gallery"
                )
            gallery_id = meta["gallery_id"]
            if meta["encryption"] == "none" and cipher is not None:
                if db.execute("SELECT 1 FROM facelens.templates LIMIT 1").fetchone():
                    raise GalleryNotEncryptedError(
                        f"{self.label} stores its templates unencrypted, yet a key was given; "
                        "open it without a key"
                    )
                meta["encryption"], meta["key_check"] = SCHEME, cipher.key_check(gallery_id).hex()
                db.execute(
                    "UPDATE facelens.meta SET value = %s WHERE key = 'encryption'", (SCHEME,)
                )
                db.execute(
                    "INSERT INTO facelens.meta VALUES ('key_check', %s)", (meta["key_check"],)
                )
        checked = opening_cipher(
            self.label, meta["encryption"], meta.get("key_check"), gallery_id, cipher
        )
        return model_id, gallery_id, checked

    def _ensure_same_encryption(self, db: psycopg.Connection[Any]) -> None:
        """Refuse to write plaintext into a gallery that another connection made encrypted."""
        row = db.execute("SELECT value FROM facelens.meta WHERE key = 'encryption'").fetchone()
        if (row is not None and row[0] != "none") != (self._cipher is not None):
            raise GalleryKeyMismatchError(
                f"{self.label} was encrypted since it was opened here; open it again with its key"
            )

    # -- people -----------------------------------------------------------------------

    def _person_row(self, db: psycopg.Connection[Any], name: str) -> tuple[int, str, datetime]:
        for key in lookup_names(name):
            row = db.execute(
                "SELECT id, name, created_at FROM facelens.people WHERE name = %s", (key,)
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1]), row[2]
        raise PersonNotFoundError(f"nobody called {name!r} is in the gallery")

    def _person(self, db: psycopg.Connection[Any], name: str) -> Person:
        person_id, stored_name, created = self._person_row(db, name)
        row = db.execute(
            "SELECT COUNT(*) FROM facelens.templates WHERE person_id = %s", (person_id,)
        ).fetchone()
        return Person(person_id, stored_name, int(row[0]) if row else 0, _iso(created))

    def add_person(self, name: str) -> Person:
        """A new person with no template yet."""
        name = clean_name(name)
        with self._write() as db:
            if db.execute("SELECT 1 FROM facelens.people WHERE name = %s", (name,)).fetchone():
                raise PersonExistsError(f"{name!r} is already in the gallery")
            db.execute("INSERT INTO facelens.people (name) VALUES (%s)", (name,))
            return self._person(db, name)

    def get_person(self, name: str) -> Person:
        with self._read() as db:
            return self._person(db, name)

    def list_people(self) -> list[Person]:
        """Everyone, by name."""
        with self._read() as db:
            rows = db.execute(
                "SELECT p.id, p.name, p.created_at, COUNT(t.id) FROM facelens.people p "
                "LEFT JOIN facelens.templates t ON t.person_id = p.id "
                'GROUP BY p.id ORDER BY p.name COLLATE "C"'
            ).fetchall()
        return [Person(int(r[0]), str(r[1]), int(r[3]), _iso(r[2])) for r in rows]

    def rename_person(self, old: str, new: str) -> Person:
        new = clean_name(new)
        with self._write() as db:
            person_id = self._person_row(db, old)[0]
            taken = db.execute("SELECT id FROM facelens.people WHERE name = %s", (new,)).fetchone()
            if taken is not None and int(taken[0]) != person_id:
                raise PersonExistsError(f"{new!r} is already in the gallery")
            db.execute("UPDATE facelens.people SET name = %s WHERE id = %s", (new, person_id))
            person = self._person(db, new)
        self._scrub()  # the old name stays in a dead row version until the table is rewritten
        return person

    def erase_person(self, name: str) -> int:
        """Delete a person and every template and crop of theirs; returns templates removed.

        The tables are rewritten afterwards (``VACUUM FULL``); see the module docstring
        for what that does and does not remove.
        """
        with self._write() as db:
            person_id = self._person_row(db, name)[0]
            removed = db.execute(
                "DELETE FROM facelens.templates WHERE person_id = %s", (person_id,)
            ).rowcount
            db.execute("DELETE FROM facelens.people WHERE id = %s", (person_id,))
        self._scrub()
        return int(removed)

    # -- templates --------------------------------------------------------------------

    def _fix_dimension(self, db: psycopg.Connection[Any], dimension: int) -> None:
        """The first template sets the vector column's dimension and builds its HNSW index."""
        row = db.execute("SELECT value FROM facelens.meta WHERE key = 'dimension'").fetchone()
        if row is not None:
            if int(row[0]) != dimension:
                raise GalleryError(
                    f"this gallery holds {row[0]}-D templates; a {dimension}-D one cannot join them"
                )
            return
        db.execute(
            f"ALTER TABLE facelens.templates ALTER COLUMN vector TYPE vector({dimension})".encode()
        )
        if self._cipher is None:
            db.execute(
                "CREATE INDEX templates_vector_hnsw ON facelens.templates "
                f"USING hnsw (vector vector_cosine_ops) WITH (m = {HNSW_M}, "
                f"ef_construction = {HNSW_EF_CONSTRUCTION})".encode()
            )
        db.execute("INSERT INTO facelens.meta VALUES ('dimension', %s)", (str(dimension),))

    def add_templates(
        self, name: str, templates: list[NewTemplate], *, create: bool = False
    ) -> list[int]:
        """Store templates for ``name`` in one transaction (creating the person if asked)."""
        require_model(templates, self._model_id)
        with self._write() as db:
            self._ensure_same_encryption(db)
            try:
                person_id = self._person_row(db, name)[0]
            except PersonNotFoundError:
                if not create:
                    raise
                inserted = db.execute(
                    "INSERT INTO facelens.people (name) VALUES (%s) RETURNING id",
                    (clean_name(name),),
                ).fetchone()
                assert inserted is not None
                person_id = int(inserted[0])
            ids = []
            for template in templates:
                vector = np.ascontiguousarray(template.vector, dtype=np.float32).reshape(-1)
                self._fix_dimension(db, len(vector))
                ids.append(self._insert_template(db, person_id, template, vector))
            return ids

    def _insert_template(
        self,
        db: psycopg.Connection[Any],
        person_id: int,
        template: NewTemplate,
        vector: FloatArray,
    ) -> int:
        next_id = db.execute("SELECT nextval('facelens.templates_id_seq')").fetchone()
        assert next_id is not None
        template_id = int(next_id[0])
        crop = template.crop_jpeg
        if self._cipher is None:
            plain, sealed = vector, None
        else:
            plain = None
            sealed = self._seal(vector.astype("<f4").tobytes(), template_id, person_id, "vector")
            if crop is not None:
                crop = self._seal(crop, template_id, person_id, "crop")
        db.execute(
            "INSERT INTO facelens.templates "
            "(id, person_id, model_id, vector, sealed_vector, source, quality) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                template_id,
                person_id,
                template.model_id,
                plain,
                sealed,
                template.source,
                float(template.quality),
            ),
        )
        if crop is not None:
            db.execute(
                "INSERT INTO facelens.crops (template_id, jpeg) VALUES (%s, %s)",
                (template_id, crop),
            )
        return template_id

    def _seal(self, plaintext: bytes, template_id: int, person_id: int, field: str) -> bytes:
        assert self._cipher is not None
        data = template_associated_data(self._gallery_id, template_id, person_id, field)
        return self._cipher.encrypt(plaintext, data)

    def _open(self, sealed: bytes, template_id: int, person_id: int, field: str) -> bytes:
        assert self._cipher is not None
        data = template_associated_data(self._gallery_id, template_id, person_id, field)
        return self._cipher.decrypt(sealed, data)

    def list_templates(self, name: str) -> list[StoredTemplate]:
        with self._read() as db:
            person_id = self._person_row(db, name)[0]
            rows = db.execute(
                "SELECT id, person_id, model_id, source, quality, created_at "
                "FROM facelens.templates WHERE person_id = %s ORDER BY id",
                (person_id,),
            ).fetchall()
        return [
            StoredTemplate(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]), _iso(r[5]))
            for r in rows
        ]

    def get_crop(self, template_id: int) -> bytes | None:
        with self._read() as db:
            row = db.execute(
                "SELECT t.person_id, c.jpeg FROM facelens.templates t "
                "LEFT JOIN facelens.crops c ON c.template_id = t.id WHERE t.id = %s",
                (template_id,),
            ).fetchone()
        if row is None:
            raise TemplateNotFoundError(f"no template with id {template_id}")
        if row[1] is None:
            return None
        crop = bytes(row[1])
        if self._cipher is not None:
            crop = self._open(crop, template_id, int(row[0]), "crop")
        return crop

    def remove_template(self, template_id: int) -> None:
        """Delete one template (the person stays, possibly with none left)."""
        with self._write() as db:
            deleted = db.execute("DELETE FROM facelens.templates WHERE id = %s", (template_id,))
            if deleted.rowcount == 0:
                raise TemplateNotFoundError(f"no template with id {template_id}")
        self._scrub()

    # -- search -----------------------------------------------------------------------

    def _version(self, db: psycopg.Connection[Any]) -> int:
        row = db.execute("SELECT version FROM facelens.state").fetchone()
        assert row is not None
        return int(row[0])

    def template_matrix(self) -> TemplateMatrix:
        """All templates (decrypted in memory when encrypted), cached until any writer commits."""
        with self._read() as db:
            version = self._version(db)  # read before the rows: a newer matrix is never mislabeled
            if self._cache is not None and version == self._cache_version:
                return self._cache
            self._cache = self._fetch_matrix(db, "t.model_id = %s", (self._model_id,))
            self._cache_version = version
            return self._cache

    def _fetch_matrix(
        self, db: psycopg.Connection[Any], where: str, params: tuple[Any, ...]
    ) -> TemplateMatrix:
        """The templates matching ``where`` (SQL over ``t`` = templates), as a matrix.

        Plaintext vectors arrive in pgvector's binary form and become one array
        (:func:`_unpack_vectors`); ciphertexts are opened one by one.
        """
        column = "t.vector" if self._cipher is None else "t.sealed_vector"
        cursor = db.cursor(binary=True)
        cursor.adapters.register_loader("vector", _RawLoader)
        cursor.adapters.register_loader("bytea", _RawLoader)
        rows = cursor.execute(
            f"SELECT t.id, t.person_id, {column}, p.name, t.quality FROM facelens.templates t "
            f"JOIN facelens.people p ON p.id = t.person_id WHERE {where} ORDER BY t.id".encode(),
            params,
        ).fetchall()
        if not rows:
            return _matrix_of(rows, np.zeros((0, 0), np.float32))
        if self._cipher is None:
            vectors = _unpack_vectors([r[2] for r in rows])
        else:
            vectors = np.stack(
                [
                    np.frombuffer(self._open(r[2], int(r[0]), int(r[1]), "vector"), dtype="<f4")
                    for r in rows
                ]
            ).astype(np.float32)
        return _matrix_of(rows, vectors)

    def nearest(self, vector: FloatArray, k: int = 10) -> list[Neighbour]:
        """The ``k`` templates most similar (cosine) to one unit-norm ``vector``, best first.

        Unencrypted: the server's HNSW index answers (approximate; recall set by
        ``ef_search``). Encrypted: exact search over the decrypted template matrix.
        """
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if self._cipher is not None:
            return self._nearest_in_memory(query, k)
        with self._read() as db:
            rows = db.execute(
                "SELECT t.id, t.person_id, p.name, 1 - t.distance FROM ("
                " SELECT id, person_id, vector <=> %(q)s AS distance FROM facelens.templates"
                " ORDER BY vector <=> %(q)s LIMIT %(k)s) t "
                "JOIN facelens.people p ON p.id = t.person_id ORDER BY t.distance",
                {"q": query, "k": int(k)},
            ).fetchall()
        return [Neighbour(int(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]

    def candidate_matrix(self, probes: FloatArray, k: int = 32) -> TemplateMatrix:
        """Every template of the people among the ``k`` nearest templates of any probe.

        ``probes`` is ``(Q, D)`` unit-norm float32. The result feeds the same
        scoring as :meth:`template_matrix` (``identify_faces``) without loading
        the whole gallery into the application: each candidate person comes
        with all their templates, so "max" and "centroid" person scores are
        exact for them; a person the HNSW search misses is missed (recall is
        measured in docs/benchmarks.md). Encrypted galleries answer from the
        decrypted matrix.
        """
        if self._cipher is not None:
            return self.template_matrix()
        people = sorted(
            {n.person_id for probe in np.atleast_2d(probes) for n in self.nearest(probe, k)}
        )
        with self._read() as db:
            return self._fetch_matrix(db, "t.person_id = ANY(%s)", (people,))

    def write_version(self) -> int:
        """The gallery's write counter: it changes whenever any process commits a write."""
        with self._read() as db:
            return self._version(db)

    def template_count(self) -> int:
        """How many templates of this gallery's model are stored."""
        with self._read() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM facelens.templates WHERE model_id = %s", (self._model_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def template_ids(self) -> np.ndarray:
        """The ids of every template of this gallery's model, increasing, ``(N,)`` int64."""
        with self._read() as db:
            cursor = db.cursor(binary=True)
            rows = cursor.execute(
                "SELECT id FROM facelens.templates WHERE model_id = %s ORDER BY id",
                (self._model_id,),
            ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def template_vectors(
        self, after_id: int = 0, limit: int = 65_536
    ) -> tuple[np.ndarray, FloatArray]:
        """Up to ``limit`` plaintext templates with an id above ``after_id``, by increasing id.

        Returns ``(ids (N,) int64, vectors (N, D) float32)``; page through a large
        gallery by passing the last id back. Only for galleries in the clear: an
        encrypted gallery's vectors come decrypted from :meth:`template_matrix`.
        """
        if self._cipher is not None:
            raise GalleryError("an encrypted gallery's templates are read with template_matrix")
        with self._read() as db:
            cursor = db.cursor(binary=True)
            cursor.adapters.register_loader("vector", _RawLoader)
            rows = cursor.execute(
                "SELECT id, vector FROM facelens.templates WHERE model_id = %s AND id > %s "
                "ORDER BY id LIMIT %s",
                (self._model_id, int(after_id), int(limit)),
            ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.array([r[0] for r in rows], dtype=np.int64), _unpack_vectors([r[1] for r in rows])

    def people_matrix(self, template_ids: np.ndarray) -> TemplateMatrix:
        """Every template of the people who own any of ``template_ids`` (ids no longer
        stored are ignored), for exact scoring of candidates found elsewhere."""
        ids = [int(i) for i in np.unique(np.asarray(template_ids, np.int64)) if i > 0]
        with self._read() as db:
            return self._fetch_matrix(
                db,
                "t.model_id = %s AND t.person_id IN "
                "(SELECT person_id FROM facelens.templates WHERE id = ANY(%s))",
                (self._model_id, ids),
            )

    def _nearest_in_memory(self, query: FloatArray, k: int) -> list[Neighbour]:
        matrix = self.template_matrix()
        if len(matrix.vectors) == 0:
            return []
        scores = matrix.vectors @ query
        count = min(k, len(scores))
        best = np.argpartition(-scores, count - 1)[:count]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [
            Neighbour(
                int(matrix.template_ids[i]),
                int(matrix.person_ids[i]),
                matrix.names[int(matrix.person_ids[i])],
                float(scores[i]),
            )
            for i in best
        ]

    # -- housekeeping -----------------------------------------------------------------

    # -- calibration (facelens calibrate) -------------------------------------------

    def store_calibration(self, record: dict[str, Any]) -> CalibrationRecord:
        """Put a fitted calibration in force (the one before is kept, marked removed)."""
        check_calibration_model(record, self._model_id, self.label)
        with self._write() as db:
            db.execute(
                "UPDATE facelens.calibrations SET removed_at = now() WHERE removed_at IS NULL"
            )
            row = db.execute(
                "INSERT INTO facelens.calibrations (id, model_id, created_at, record) "
                "VALUES (%s, %s, %s, %s) RETURNING version",
                (record["id"], record["model_id"], record["created"], Jsonb(record)),
            ).fetchone()
            assert row is not None  # RETURNING always gives the new row
            version = int(row[0])
            db.execute(
                "INSERT INTO facelens.audit (action, target, detail, outcome) "
                "VALUES ('calibrate', %s, %s, 'ok')",
                (record["id"], Jsonb(calibration_audit_detail(record, version))),
            )
        return CalibrationRecord(version, record["created"], None, record)

    def calibration(self) -> CalibrationRecord | None:
        """The calibration in force, or None (the shipped one applies)."""
        with self._read() as db:
            row = db.execute(
                "SELECT version, created_at, record FROM facelens.calibrations "
                "WHERE removed_at IS NULL"
            ).fetchone()
        return None if row is None else CalibrationRecord(int(row[0]), _iso(row[1]), None, row[2])

    def remove_calibration(self) -> CalibrationRecord | None:
        """Take the calibration in force out of force (kept in the history); None if none."""
        with self._write() as db:
            row = db.execute(
                "UPDATE facelens.calibrations SET removed_at = now() WHERE removed_at IS NULL "
                "RETURNING version, created_at, removed_at, record"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "INSERT INTO facelens.audit (action, target, detail, outcome) "
                "VALUES ('calibration_remove', %s, %s, 'ok')",
                (row[3]["id"], Jsonb({"version": int(row[0])})),
            )
        return CalibrationRecord(int(row[0]), _iso(row[1]), _iso(row[2]), row[3])

    def calibration_history(self) -> list[CalibrationRecord]:
        """Every calibration this gallery has had, oldest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT version, created_at, removed_at, record FROM facelens.calibrations "
                "ORDER BY version"
            ).fetchall()
        return [
            CalibrationRecord(int(r[0]), _iso(r[1]), None if r[2] is None else _iso(r[2]), r[3])
            for r in rows
        ]

    def integrity_check(self) -> str:
        """ "ok" when the gallery's invariants hold, else what is wrong.

        Checks: every template and crop has its owner, every template has
        exactly one of plaintext/ciphertext and the gallery's dimension.
        """
        problems = []
        with self._read() as db:
            orphan = db.execute(
                "SELECT COUNT(*) FROM facelens.templates t LEFT JOIN facelens.people p "
                "ON p.id = t.person_id WHERE p.id IS NULL"
            ).fetchone()
            if orphan and orphan[0]:
                problems.append(f"{orphan[0]} templates without a person")
            wrong_kind = "vector IS NULL" if self._cipher is None else "sealed_vector IS NULL"
            mixed = db.execute(
                f"SELECT COUNT(*) FROM facelens.templates WHERE {wrong_kind}".encode()
            ).fetchone()
            if mixed and mixed[0]:
                problems.append(f"{mixed[0]} templates stored in the wrong form")
            dims = db.execute(
                "SELECT COUNT(DISTINCT vector_dims(vector)) FROM facelens.templates "
                "WHERE vector IS NOT NULL"
            ).fetchone()
            if dims and dims[0] > 1:
                problems.append("templates of several dimensions")
        return "ok" if not problems else "; ".join(problems)

    def _scrub(self) -> None:
        """After a delete or rename: rewrite the tables (``full``) or vacuum them (``vacuum``).

        ``full`` (VACUUM FULL) writes every table, TOAST table and index (HNSW
        too) into new files and drops the old ones: the erased bytes leave the
        live files. It holds an exclusive lock meanwhile and rebuilds the HNSW
        index, so it takes about an index build (docs/benchmarks.md).
        ``vacuum`` (plain VACUUM) is quick and blocks nobody, but only marks the
        space free: erased bytes can stay in the files until new rows reuse it.
        """
        command = "VACUUM (FULL, ANALYZE)" if self.scrub == "full" else "VACUUM (ANALYZE)"
        with self._lock:
            db = self._connection()
            try:
                for table in _TABLES:
                    db.execute(f"{command} {table}".encode())
            except psycopg.Error as exc:
                raise GalleryError(
                    f"{self.label}: the rows are deleted, but {command} failed ({exc}); run "
                    "it as the table owner to remove the dead row versions"
                ) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> PostgresGallery:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _unpack_vectors(values: list[bytes]) -> FloatArray:
    """pgvector values in binary form (int16 dimension, int16 unused, big-endian float32s),
    all of one dimension, as one ``(N, D)`` float32 array, in a single step."""
    dimension = (len(values[0]) - 4) // 4
    packed = np.frombuffer(b"".join(values), dtype=">f4")
    return packed.reshape(len(values), dimension + 1)[:, 1:].astype(np.float32)


def _matrix_of(rows: list[Any], vectors: FloatArray) -> TemplateMatrix:
    """A template matrix from (id, person_id, _, name, quality) rows and their (R, D) vectors."""
    return TemplateMatrix(
        template_ids=np.array([r[0] for r in rows], dtype=np.int64),
        person_ids=np.array([r[1] for r in rows], dtype=np.int64),
        vectors=vectors,
        names={int(r[1]): str(r[3]) for r in rows},
        qualities=np.array([r[4] for r in rows], dtype=np.float64),
    )


class _RawLoader(Loader):
    """Binary column values as ``bytes`` (vectors and ciphertexts are parsed by the gallery)."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


class PostgresAuditLog:
    """The service's audit log in the gallery's database (table ``facelens.audit``).

    The same fields as the service's SQLite log (``facelens.service.audit``):
    who (API key id, name, role) did what (``action``) to which person or photo
    (``target``), details as JSON, and the outcome (``ok`` or an error code).
    Append-only; each :meth:`record` is committed before it returns. It never
    holds a template, a crop or an image, and erasing a person leaves it alone.

    Args:
        url: the gallery's PostgreSQL URL (the schema is created if missing).
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self.label = redact_url(url)
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
            apply_migrations(self._db)
        except psycopg.Error as exc:
            raise GalleryError(f"cannot open the audit log in {self.label}: {exc}") from exc

    def record(
        self,
        action: str,
        *,
        key_id: str | None = None,
        key_name: str | None = None,
        role: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        outcome: str = "ok",
    ) -> None:
        """Append one entry."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO facelens.audit "
                    "(key_id, key_name, role, action, target, detail, outcome) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (key_id, key_name, role, action, target, Jsonb(detail or {}), outcome),
                )
            except psycopg.Error as exc:
                raise GalleryError(f"{self.label}: cannot write the audit log ({exc})") from exc

    def entries(
        self, *, limit: int = 1000, action: str | None = None, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, oldest first, as dicts with the fields above and
        ``id`` and ``at`` (ISO 8601, UTC, milliseconds); optionally one action, or since a time."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, key_id, key_name, role, action, target, detail, outcome "
                "FROM facelens.audit WHERE (%(action)s::text IS NULL OR action = %(action)s) "
                "AND (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
                "ORDER BY id DESC LIMIT %(limit)s",
                {"action": action, "since": since, "limit": int(limit)},
            ).fetchall()
        names = ("id", "at", "key_id", "key_name", "role", "action", "target", "detail", "outcome")
        return [
            dict(
                zip(
                    names,
                    (*r[:1], r[1].astimezone(UTC).isoformat(timespec="milliseconds"), *r[2:]),
                    strict=True,
                )
            )
            for r in reversed(rows)
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def stored_model_id(url: str) -> str | None:
    """The embedder id a PostgreSQL gallery was made with, or None if it has none yet."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as db:
            exists = db.execute("SELECT to_regclass('facelens.meta')").fetchone()
            if exists is None or exists[0] is None:
                return None
            row = db.execute("SELECT value FROM facelens.meta WHERE key = 'model_id'").fetchone()
    except psycopg.Error as exc:
        raise GalleryError(f"cannot read the gallery {redact_url(url)}: {exc}") from exc
    return None if row is None else str(row[0])
