"""The audit log: who (key id and name) did what, to which person or photo, and when.

Entries name people and photos by their labels (person name, uploaded file
name, template id) and never hold a template, a face crop or an image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facelens.service.keys import ApiKey
from facelens.service.state import StateDB


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


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
