"""The audit log: who (key id and name) did what, to which person or photo, and when.

Entries name people and photos by their labels (person name, uploaded file
name, template id) and never hold a template, a face crop or an image.

Who: an API key (id, name, role); ``cli`` and the OS user for erasures done
with ``facelens people remove``; nobody for a refused request (action
``refused``: its detail holds the key id when one could be read from the
presented key, the client address and the reason).

Erasure: once a person is erased, :meth:`AuditLog.forget` replaces their
name in every entry (target and detail) by a keyed pseudonym
``erased:<16 hex>``, an HMAC-SHA256 of the name with a random secret kept in
``service.db`` (table ``meta``). The action, time and actor stay; the same
erased name always gives the same pseudonym, so an auditor can still follow
what was done to that person, but the name cannot be read back. Then the
file is vacuumed and its WAL emptied, so no byte of the name remains.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from facelens.service.keys import ApiKey
from facelens.service.state import StateDB

__all__ = ["AuditEntry", "AuditLog"]


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action. ``outcome`` is ``ok`` or the error code that stopped it."""

    id: int
    at: str  # ISO 8601, UTC, seconds
    key_id: str | None
    key_name: str | None
    role: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "key_id": self.key_id,
            "key_name": self.key_name,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "outcome": self.outcome,
        }


class AuditLog:
    """Append-only log in ``service.db``."""

    def __init__(self, db: StateDB) -> None:
        self._db = db

    def record(
        self,
        key: ApiKey | None,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        outcome: str = "ok",
    ) -> None:
        """Append one entry (committed before this returns)."""
        with self._db.write() as db:
            db.execute(
                "INSERT INTO audit (at, key_id, key_name, role, action, target, detail, outcome) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(timespec="milliseconds"),
                    key.id if key else None,
                    key.name if key else None,
                    key.role if key else None,
                    action,
                    target,
                    json.dumps(detail or {}, ensure_ascii=False, default=str),
                    outcome,
                ),
            )

    async def record_in_thread(
        self,
        key: ApiKey | None,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        outcome: str = "ok",
    ) -> None:
        """:meth:`record` for an ``async`` route: the commit (an fsync, several ms on a busy
        disk) runs in the thread pool, so the event loop keeps serving other connections."""
        await run_in_threadpool(self.record, key, action, target, detail, outcome)

    def record_cli(
        self, action: str, target: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """Append an entry for something done from the command line: actor ``cli`` and the
        OS user (in ``key_name``, with role ``cli``)."""
        with self._db.write() as db:
            db.execute(
                "INSERT INTO audit (at, key_id, key_name, role, action, target, detail, outcome) "
                "VALUES (?, NULL, ?, 'cli', ?, ?, ?, 'ok')",
                (
                    datetime.now(UTC).isoformat(timespec="milliseconds"),
                    _os_user(),
                    action,
                    target,
                    json.dumps(detail or {}, ensure_ascii=False, default=str),
                ),
            )

    def pseudonym(self, name: str) -> str:
        """``erased:<16 hex>``: HMAC-SHA256 of ``name`` (NFC, spaces collapsed) with this
        log's secret."""
        key = _normal(name).encode("utf-8")
        digest = hmac.new(self._secret(), key, hashlib.sha256).hexdigest()
        return f"erased:{digest[:16]}"

    def forget(self, name: str) -> int:
        """Replace ``name`` by :meth:`pseudonym` in every entry; returns the entries changed.

        The target and every string of the detail that equals the name (as given or
        normalised) are replaced; a longer string that contains it (e.g. a photo file
        named after the person) has the name replaced inside it when the name has at
        least :data:`MIN_SUBSTRING_NAME` characters. Every name the person had before a
        rename is replaced the same way (each with its own pseudonym). Then no byte of the
        old rows is left in the file (vacuum and an emptied WAL).
        """
        changed = sum(self._replace_name(known) for known in self._names_had(name))
        self._db.scrub()
        return changed

    def _names_had(self, name: str) -> list[str]:
        """``name`` and every name the person had before it: a ``rename`` entry (target: the
        old name, ``new_name``: the new) leads back, through every rename."""
        renames = [
            (str(target), json.loads(str(detail)).get("new_name"))
            for target, detail in self._db.read(
                "SELECT target, detail FROM audit WHERE action = 'rename'", ()
            )
        ]
        had = [name]
        for old, new in renames * len(renames):  # each pass follows one more rename back
            if new in had and old not in had:
                had.append(old)
        return had

    def _replace_name(self, name: str) -> int:
        """:meth:`forget`'s replacement of one name (no scrub); the entries changed."""
        forms = sorted({name, _normal(name)} - {""}, key=len, reverse=True)
        if not forms:
            return 0
        token = self.pseudonym(name)
        changed = 0
        with self._db.write() as db:
            rows = db.execute("SELECT id, target, detail FROM audit").fetchall()
            for row_id, target, detail in rows:
                new_target = _replace(target, forms, token)
                new_detail = json.dumps(
                    _replace_all(json.loads(detail), forms, token), ensure_ascii=False
                )
                if new_target != target or new_detail != detail:
                    db.execute(
                        "UPDATE audit SET target = ?, detail = ? WHERE id = ?",
                        (new_target, new_detail, row_id),
                    )
                    changed += 1
        return changed

    def _secret(self) -> bytes:
        with self._db.write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'audit_secret'").fetchone()
            if row is None:
                value = secrets.token_hex(32)
                db.execute("INSERT INTO meta (key, value) VALUES ('audit_secret', ?)", (value,))
            else:
                value = str(row[0])
        return bytes.fromhex(value)

    def entries(
        self, *, limit: int = 1000, action: str | None = None, since: str | None = None
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries, oldest first; optionally one action, or since a time."""
        where, params = [], []
        if action:
            where.append("action = ?")
            params.append(action)
        if since:
            where.append("at >= ?")
            params.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.read(
            "SELECT id, at, key_id, key_name, role, action, target, detail, outcome FROM audit "
            f"{clause} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [
            AuditEntry(
                int(r[0]),  # type: ignore[call-overload]
                str(r[1]),
                _opt(r[2]),
                _opt(r[3]),
                _opt(r[4]),
                str(r[5]),
                _opt(r[6]),
                json.loads(str(r[7])),
                str(r[8]),
            )
            for r in reversed(rows)
        ]


MIN_SUBSTRING_NAME = 4
"""Names this long or longer are also replaced inside longer strings (file names...)."""


def _normal(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())


def _replace(value: str | None, forms: list[str], token: str) -> str | None:
    if value is None:
        return None
    if value in forms or _normal(value) in forms:
        return token
    for form in forms:
        if len(form) >= MIN_SUBSTRING_NAME:
            value = value.replace(form, token)
    return value


def _replace_all(value: Any, forms: list[str], token: str) -> Any:
    if isinstance(value, str):
        return _replace(value, forms, token)
    if isinstance(value, list):
        return [_replace_all(v, forms, token) for v in value]
    if isinstance(value, dict):
        return {k: _replace_all(v, forms, token) for k, v in value.items()}
    return value


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. in a container)
        return "unknown"


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
