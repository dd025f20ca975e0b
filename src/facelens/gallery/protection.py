"""Templates and face crops protected at rest: AES-256-GCM under a key kept outside the gallery.

A face template is biometric data (faces can be rebuilt from embeddings), so a
gallery made with a key stores every template vector and every face crop only
as ciphertext. The key never enters the gallery file; it comes from, in this
order of precedence:

1. an explicit key file (``--key-file`` on the command line, ``key_file=`` in
   the Python API);
2. ``$FACELENS_GALLERY_KEY_FILE``: the path of a key file;
3. ``$FACELENS_GALLERY_KEY``: the key itself (for containers and services that
   receive secrets through the environment).

With none of them the gallery is opened without a key (fine for an
unencrypted gallery, refused for an encrypted one). A key is 32 random bytes
written as base64 text (one line); ``facelens gallery new-key`` makes one with
file mode 0600.

Each ciphertext is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag
(16 bytes)``, so a 128-D float32 template (512 bytes) takes 541 bytes. The
associated data (authenticated, not stored) names the gallery, the row, its
owner and the field (:func:`template_associated_data`), so a ciphertext copied
to another row, another person, another field or another gallery fails to
decrypt instead of silently answering for someone else.

This module knows nothing of SQLite: any backend stores :meth:`GalleryCipher.encrypt`
output as an opaque byte string and passes the same associated data back to
:meth:`GalleryCipher.decrypt`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facelens import settings
from facelens.errors import (
    GalleryError,
    GalleryKeyError,
    GalleryKeyMismatchError,
    GalleryKeyRequiredError,
    GalleryNotEncryptedError,
)

KEY_FILE_ENV = settings.GALLERY_KEY_FILE.name
KEY_ENV = settings.GALLERY_KEY.name
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_VERSION = 1
OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES
SCHEME = "aes-256-gcm-v1"  # what a backend records to say "this gallery is encrypted"

_KEY_CHECK_PLAINTEXT = b"facelens gallery key check v1"


class GalleryCipher:
    """AES-256-GCM over byte strings, with associated data binding each one to its place.

    Args:
        key: exactly 32 bytes. Keep it outside the gallery (see the module docstring).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise GalleryKeyError(
                f"a gallery key must be {KEY_BYTES} bytes, not {len(key)}; "
                "make one with `facelens gallery new-key PATH`"
            )
        self._aead = AESGCM(key)
        # A short public name of the key (not the key): tells keys apart in messages and logs.
        self.fingerprint = hashlib.sha256(b"facelens key fingerprint\0" + key).hexdigest()[:16]

    @classmethod
    def generate(cls) -> GalleryCipher:
        """A cipher with a fresh random key (use :func:`write_key_file` to keep the key)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """``plaintext`` sealed under a fresh random nonce; ``associated_data`` is not stored."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, associated_data)
        return bytes([FORMAT_VERSION]) + nonce + sealed

    def decrypt(self, blob: bytes, associated_data: bytes) -> bytes:
        """The plaintext of ``blob``; raises :class:`GalleryKeyMismatchError` if it does not open.

        It does not open when the key is another one, the blob was changed, or
        the blob belongs to another row/field/gallery than ``associated_data`` says.
        """
        if len(blob) < OVERHEAD_BYTES or blob[0] != FORMAT_VERSION:
            raise GalleryKeyMismatchError(
                "a stored template is not a facelens ciphertext (damaged, or not encrypted)"
            )
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, associated_data)
        except InvalidTag:
            raise GalleryKeyMismatchError(
                f"the gallery key (fingerprint {self.fingerprint}) does not open this data: "
                "it is the wrong key, the key was rotated, or the row was altered"
            ) from None

    def key_check(self, gallery_id: str) -> bytes:
        """A small ciphertext a backend stores so that a wrong key is refused when opening."""
        return self.encrypt(_KEY_CHECK_PLAINTEXT, _key_check_data(gallery_id))

    def opens(self, key_check: bytes, gallery_id: str) -> bool:
        """True when this cipher's key is the one that made ``key_check`` for this gallery."""
        try:
            return self.decrypt(key_check, _key_check_data(gallery_id)) == _KEY_CHECK_PLAINTEXT
        except GalleryKeyMismatchError:
            return False


def template_associated_data(
    gallery_id: str, template_id: int, person_id: int, field: str
) -> bytes:
    """What a stored template field is bound to: gallery, template row, owner, field name.

    ``field`` is ``"vector"`` (the template, little-endian float32) or ``"crop"``
    (the aligned face JPEG).
    """
    return f"facelens/{gallery_id}/template/{template_id}/person/{person_id}/{field}".encode()


def opening_cipher(
    label: str,
    scheme: str | None,
    key_check: str | None,
    store_id: str,
    cipher: GalleryCipher | None,
) -> GalleryCipher | None:
    """The cipher a store of templates is opened with, checked against what it records.

    ``scheme`` is the store's recorded encryption (``None`` or ``"none"``: in the
    clear, and then the result is None; a key given for such a store is the
    caller's to refuse or adopt). ``key_check`` is the hex of
    :meth:`GalleryCipher.key_check` for ``store_id``. ``label`` names the store in
    messages. Raises :class:`GalleryKeyRequiredError` without a key,
    :class:`GalleryKeyMismatchError` with another one, :class:`GalleryError` for
    an unknown scheme.
    """
    if scheme in (None, "none"):
        return None
    if scheme != SCHEME:
        raise GalleryError(f"{label} is encrypted with {scheme}, unknown to this facelens")
    if cipher is None:
        raise GalleryKeyRequiredError(
            f"{label} is encrypted: give its key with --key-file, "
            "$FACELENS_GALLERY_KEY_FILE or $FACELENS_GALLERY_KEY"
        )
    if not cipher.opens(bytes.fromhex(str(key_check)), store_id):
        raise GalleryKeyMismatchError(
            f"the key given (fingerprint {cipher.fingerprint}) does not open {label}; "
            "nothing was changed. Use the key it was encrypted with (or last rotated to)"
        )
    return cipher


def side_store_cipher(
    label: str,
    meta: dict[str, str],
    store_id: str,
    cipher: GalleryCipher | None,
    holds_rows: bool,
) -> tuple[GalleryCipher | None, dict[str, str]]:
    """Key rules for the files beside a gallery that hold templates (cluster and scan index).

    ``meta`` is what the store records (``encryption``, ``key_check``). An
    encrypted store needs its key (:func:`opening_cipher`); a key given for a
    store in the clear makes an empty one encrypted, and is refused
    (:class:`GalleryNotEncryptedError`) when it already ``holds_rows``. Returns
    the cipher to seal and open rows with, and the meta rows to record.
    """
    scheme = meta.get("encryption")
    if scheme is not None or cipher is None:
        return opening_cipher(label, scheme, meta.get("key_check"), store_id, cipher), {}
    if holds_rows:
        raise GalleryNotEncryptedError(
            f"{label} holds templates unencrypted, yet a key was given; open it without a "
            "key, or make a new one with the key (cluster --index, ingest --scan)"
        )
    return cipher, {"encryption": SCHEME, "key_check": cipher.key_check(store_id).hex()}


class RowSealer:
    """Seals and opens one store's binary fields, or passes them through without a key.

    Each value is bound (associated data) to the store, its row, the row's owner
    (a person, a photo, a scanned file) and the field name, as the gallery binds
    its templates (:func:`template_associated_data`).
    """

    def __init__(self, cipher: GalleryCipher | None, store_id: str) -> None:
        self.cipher = cipher
        self.store_id = store_id

    def seal(self, value: bytes | None, row_id: int, owner_id: int, field: str) -> bytes | None:
        if value is None or self.cipher is None:
            return value
        data = template_associated_data(self.store_id, row_id, owner_id, field)
        return self.cipher.encrypt(value, data)

    def open(self, value: bytes | None, row_id: int, owner_id: int, field: str) -> bytes | None:
        if value is None or self.cipher is None:
            return None if value is None else bytes(value)
        data = template_associated_data(self.store_id, row_id, owner_id, field)
        return self.cipher.decrypt(bytes(value), data)


def _key_check_data(gallery_id: str) -> bytes:
    return f"facelens/{gallery_id}/key-check".encode()


def parse_key(text: str | bytes, origin: str) -> GalleryCipher:
    """A cipher from the base64 text of a key; ``origin`` names where it came from in errors."""
    raw = text.strip() if isinstance(text, bytes) else text.strip().encode()
    try:
        key = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise GalleryKeyError(
            f"{origin} does not hold a gallery key (expected {KEY_BYTES} bytes as base64 text); "
            "make one with `facelens gallery new-key PATH`"
        )
    return GalleryCipher(key)


def read_key_file(path: str | Path) -> GalleryCipher:
    """The key in a key file (base64 text, as :func:`write_key_file` writes)."""
    path = Path(path).expanduser()
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise GalleryKeyError(f"cannot read the gallery key file {path}: {exc.strerror}") from exc
    return parse_key(text, f"key file {path}")


def write_key_file(path: str | Path, cipher_key: bytes | None = None) -> GalleryCipher:
    """Write a new key file readable only by its owner (mode 0600); refuses to overwrite one.

    Args:
        path: where to write it (its folder is created).
        cipher_key: the 32 key bytes; a fresh random key if None.
    """
    path = Path(path).expanduser()
    key = secrets.token_bytes(KEY_BYTES) if cipher_key is None else cipher_key
    cipher = GalleryCipher(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GalleryKeyError(
            f"{path} already exists; a key file is never overwritten (a lost key is a lost gallery)"
        ) from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(base64.b64encode(key) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return cipher


def resolve_gallery_key(key_file: str | Path | None = None) -> GalleryCipher | None:
    """The key in force: ``key_file``, else ``$FACELENS_GALLERY_KEY_FILE``, else ``$FACELENS_GALLERY_KEY``.

    Returns None when none of them is set (the gallery is opened without a key).
    """
    if key_file:
        return read_key_file(key_file)
    configured_file = settings.gallery_key_file()
    if configured_file:
        return read_key_file(configured_file)
    configured_key = settings.gallery_key()
    if configured_key:
        return parse_key(configured_key, f"${KEY_ENV}")
    return None


__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "OVERHEAD_BYTES",
    "SCHEME",
    "GalleryCipher",
    "RowSealer",
    "opening_cipher",
    "parse_key",
    "read_key_file",
    "resolve_gallery_key",
    "side_store_cipher",
    "template_associated_data",
    "write_key_file",
]
