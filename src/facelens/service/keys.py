"""API keys with roles, stored hashed.

A key reads ``fl_<id>_<secret>``: ``id`` (8 hex digits) is public and names
the key in the audit log; ``secret`` is 32 random bytes (256 bits, URL-safe
base64). Only the sha256 of the secret is stored: with that much entropy a
slow hash adds nothing, and a leaked ``service.db`` gives no usable key.
Secrets are compared in constant time.

Roles are ordered: ``query`` (detect, identify, verify, look at people and
jobs) < ``enroll`` (also enroll, add photos, rename, start jobs) < ``admin``
(also erase people and photos, read the audit log). A key may do what its
role and every lower role may do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from facelens.service.errors import InvalidRequestError, KeyNotFoundError, NotAuthenticatedError
from facelens.service.state import StateDB

__all__ = ["ROLES", "ApiKey", "KeyStore", "Role", "key_id_of"]

Role = Literal["query", "enroll", "admin"]
ROLES: tuple[Role, ...] = ("query", "enroll", "admin")
"""Lowest to highest."""

_KEY_PATTERN = re.compile(r"^fl_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: Role) -> bool:
        """True when this key's role is ``role`` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def key_id_of(presented: str) -> str | None:
    """The public id of a presented key string when it has the shape of a key, else None."""
    match = _KEY_PATTERN.match(presented.strip())
    return match.group(1) if match else None


class KeyStore:
    """Create, list, revoke and check API keys in ``service.db``."""

    def __init__(self, db: StateDB) -> None:
        self._db = db

    def create(self, name: str, role: str) -> tuple[ApiKey, str]:
        """A new key; returns it and the full key string, shown once and never stored."""
        if role not in ROLES:
            raise InvalidRequestError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRequestError("a key needs a name of 1 to 100 characters")
        if not name.isprintable():  # it is shown in lists and the audit log, on terminals
            raise InvalidRequestError(
                "a key's name cannot hold control characters (escape codes, line breaks)"
            )
        secret = secrets.token_urlsafe(32)
        with self._db.write() as db:
            while True:
                key_id = secrets.token_hex(4)
                if db.execute("SELECT 1 FROM api_keys WHERE id = ?", (key_id,)).fetchone() is None:
                    break
            created = _now()
            db.execute(
                "INSERT INTO api_keys (id, name, role, secret_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key_id, name, role, _digest(secret), created),
            )
        key = ApiKey(key_id, name, role, created, None)
        return key, f"fl_{key_id}_{secret}"

    def list_keys(self, *, include_revoked: bool = True) -> list[ApiKey]:
        rows = self._db.read(
            "SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, id"
        )
        keys = [ApiKey(str(r[0]), str(r[1]), r[2], str(r[3]), _opt(r[4])) for r in rows]  # type: ignore[arg-type]
        return [k for k in keys if include_revoked or k.active]

    def get(self, key_id: str) -> ApiKey:
        for key in self.list_keys():
            if key.id == key_id:
                return key
        raise KeyNotFoundError(f"no API key with id {key_id!r}; see `facelens keys list`")

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once: every later request with it is refused."""
        key = self.get(key_id)
        if key.active:
            with self._db.write() as db:
                db.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (_now(), key_id),
                )
        return self.get(key_id)

    def authenticate(self, presented: str) -> ApiKey:
        """The active key ``presented`` is, or :class:`NotAuthenticatedError`."""
        match = _KEY_PATTERN.match(presented.strip())
        if match is None:
            raise NotAuthenticatedError("the API key is malformed; keys look like fl_<id>_<secret>")
        key_id, secret = match.groups()
        rows = self._db.read(
            "SELECT id, name, role, created_at, revoked_at, secret_sha256 FROM api_keys WHERE id = ?",
            (key_id,),
        )
        expected = str(rows[0][5]) if rows else _digest("")
        if not rows or not hmac.compare_digest(expected, _digest(secret)):
            raise NotAuthenticatedError("unknown API key")
        r = rows[0]
        key = ApiKey(str(r[0]), str(r[1]), r[2], str(r[3]), _opt(r[4]))  # type: ignore[arg-type]
        if not key.active:
            raise NotAuthenticatedError(f"API key {key.id} was revoked on {key.revoked_at}")
        return key


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
