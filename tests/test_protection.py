"""Templates protected at rest: the file alone reveals no template or crop; keys open, rotate, refuse.

Every check reads the raw bytes of the gallery (database, WAL and shared-memory
files) as an attacker holding only the file would.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facelens.api import FaceLens
from facelens.errors import (
    GalleryKeyError,
    GalleryKeyMismatchError,
    GalleryKeyRequiredError,
    GalleryNotEncryptedError,
)
from facelens.gallery import NewTemplate, SQLiteGallery, open_gallery
from facelens.gallery.protection import (
    KEY_ENV,
    KEY_FILE_ENV,
    OVERHEAD_BYTES,
    GalleryCipher,
    read_key_file,
    resolve_gallery_key,
    template_associated_data,
    write_key_file,
)
from facelens.models.registry import DEFAULT_EMBEDDER
from tests.conftest import REPO

FACELENS = [sys.executable, "-m", "facelens.cli.main"]


def _file_bytes(path: Path) -> bytes:
    """The database file and its WAL/shared-memory companions, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def _chunks(data: bytes, size: int) -> list[bytes]:
    """Every aligned ``size``-byte piece of ``data``, and the rest when it is at least 8 bytes
    (a shorter tail, a byte or two, turns up in any file by chance)."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [p for p in pieces if len(p) == size or len(p) >= 8]


def _leaks(secrets: list[bytes], raw: bytes, size: int = 16) -> int:
    """How many ``size``-byte pieces of the secrets appear anywhere in ``raw``."""
    return sum(chunk in raw for secret in secrets for chunk in _chunks(secret, size))


def _random_templates(
    count: int, seed: int, crops: bool = True, dimension: int = 128
) -> list[NewTemplate]:
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        vector = rng.normal(size=dimension).astype(np.float32)
        vector /= np.linalg.norm(vector)
        crop = rng.integers(0, 256, 700, dtype=np.uint8).tobytes() if crops else None
        out.append(NewTemplate(vector, DEFAULT_EMBEDDER, f"photo-{seed}-{index}", 0.9, crop))
    return out


def _secrets(gallery: SQLiteGallery) -> tuple[list[bytes], list[bytes]]:
    """Every template's bytes and every crop, as the (decrypting) gallery hands them out."""
    vectors = [v.astype("<f4").tobytes() for v in gallery.template_matrix().vectors]
    crops = []
    for person in gallery.list_people():
        for template in gallery.list_templates(person.name):
            crop = gallery.get_crop(template.id)
            if crop is not None:
                crops.append(crop)
    return vectors, crops


def _run_cli(
    *args: str | Path, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_FILE_ENV)}
    env.update(env_extra or {})
    return subprocess.run(
        [*FACELENS, *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO
    )


# --- the cipher -------------------------------------------------------------------------------


def test_cipher_round_trip_and_binding() -> None:
    cipher = GalleryCipher.generate()
    data = os.urandom(512)
    here = template_associated_data("g1", 7, 3, "vector")
    sealed = cipher.encrypt(data, here)
    assert len(sealed) == len(data) + OVERHEAD_BYTES and data not in sealed
    assert cipher.decrypt(sealed, here) == data
    assert cipher.encrypt(data, here) != sealed  # a fresh nonce every time
    for elsewhere in (
        template_associated_data("g1", 8, 3, "vector"),  # another row
        template_associated_data("g1", 7, 4, "vector"),  # another person
        template_associated_data("g1", 7, 3, "crop"),  # another field
        template_associated_data("g2", 7, 3, "vector"),  # another gallery
    ):
        with pytest.raises(GalleryKeyMismatchError):
            cipher.decrypt(sealed, elsewhere)
    with pytest.raises(GalleryKeyMismatchError):
        GalleryCipher.generate().decrypt(sealed, here)  # another key
    tampered = bytearray(sealed)
    tampered[20] ^= 1
    with pytest.raises(GalleryKeyMismatchError):
        cipher.decrypt(bytes(tampered), here)
    with pytest.raises(GalleryKeyError, match="32 bytes"):
        GalleryCipher(b"short")


def test_key_files_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    assert resolve_gallery_key(None) is None
    first = write_key_file(tmp_path / "keys" / "first.key")
    assert stat.S_IMODE((tmp_path / "keys" / "first.key").stat().st_mode) == 0o600
    with pytest.raises(GalleryKeyError, match="never overwritten"):
        write_key_file(tmp_path / "keys" / "first.key")
    assert read_key_file(tmp_path / "keys" / "first.key").fingerprint == first.fingerprint
    second = write_key_file(tmp_path / "second.key")
    env_key = GalleryCipher(b"k" * 32)
    monkeypatch.setenv(KEY_ENV, "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=")  # base64 of k*32
    resolved = resolve_gallery_key(None)
    assert resolved is not None and resolved.fingerprint == env_key.fingerprint
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "second.key"))  # a key file beats a key
    resolved = resolve_gallery_key(None)
    assert resolved is not None and resolved.fingerprint == second.fingerprint
    resolved = resolve_gallery_key(tmp_path / "keys" / "first.key")  # an explicit file beats both
    assert resolved is not None and resolved.fingerprint == first.fingerprint
    (tmp_path / "bad.key").write_text("not a key\n")
    with pytest.raises(GalleryKeyError, match="does not hold a gallery key"):
        read_key_file(tmp_path / "bad.key")
    with pytest.raises(GalleryKeyError, match="cannot read"):
        read_key_file(tmp_path / "missing.key")


# --- the gallery file ---------------------------------------------------------------------------


def test_encrypted_gallery_file_holds_no_template_or_crop(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    key_file = tmp_path / "gallery.key"
    write_key_file(key_file)
    results = {}
    for label, key in (("plain", None), ("encrypted", key_file)):
        path = tmp_path / f"{label}.db"
        with FaceLens(gallery=path, key_file=key) as lens:
            lens.enroll("Eileen Collins", [astronaut, astronaut[:, ::-1].copy()])
            gallery = lens.gallery
            assert isinstance(gallery, SQLiteGallery) and gallery.encrypted == (key is not None)
            dimension = lens.pipeline.embedder.dimension
            gallery.add_templates(
                "Synthetic Person", _random_templates(40, 1, dimension=dimension), create=True
            )
            vectors, crops = _secrets(gallery)
            assert len(vectors) == 42 and len(crops) == 42
            assert crops[0][:2] == b"\xff\xd8"  # the real enrollment's crop is a JPEG
            raw_open = _file_bytes(path)  # while open: the WAL holds the recent writes
            assert [m.identity for m in lens.identify(astronaut)] == ["Eileen Collins"]
        raw_closed = _file_bytes(path)
        results[label] = (
            _leaks(vectors, raw_open) + _leaks(vectors, raw_closed),
            _leaks(crops, raw_open, 32) + _leaks(crops, raw_closed, 32),
            sum(len(vector) for vector in vectors) // 16,
        )
    vector_leaks, crop_leaks, pieces = results["plain"]
    assert vector_leaks >= pieces and crop_leaks > 0  # the search finds plaintext when it is there
    assert results["encrypted"][:2] == (0, 0)  # and finds nothing of an encrypted gallery


def test_without_key_or_with_wrong_key_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    right = GalleryCipher.generate()
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=right)
    gallery.add_templates("Ada", _random_templates(5, 2), create=True)
    before = gallery.template_matrix().vectors.copy()
    gallery.close()
    with pytest.raises(GalleryKeyRequiredError, match="is encrypted"):
        SQLiteGallery(path, DEFAULT_EMBEDDER)
    with pytest.raises(GalleryKeyMismatchError, match="does not open"):
        SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())
    with pytest.raises(GalleryKeyMismatchError):
        open_gallery(path, DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())
    reopened = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=right)
    np.testing.assert_array_equal(reopened.template_matrix().vectors, before)
    assert reopened.integrity_check() == "ok"
    reopened.close()


def test_a_key_is_refused_for_an_unencrypted_gallery_but_encrypts_a_new_one(
    tmp_path: Path,
) -> None:
    plain = SQLiteGallery(tmp_path / "plain.db", DEFAULT_EMBEDDER)
    plain.add_templates("Ada", _random_templates(2, 3), create=True)
    plain.close()
    with pytest.raises(GalleryNotEncryptedError, match="gallery encrypt"):
        SQLiteGallery(tmp_path / "plain.db", DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())
    assert (
        len(SQLiteGallery(tmp_path / "plain.db", DEFAULT_EMBEDDER).template_matrix().vectors) == 2
    )
    fresh = SQLiteGallery(tmp_path / "new.db", DEFAULT_EMBEDDER, cipher=GalleryCipher.generate())
    assert fresh.encrypted
    fresh.close()
    with pytest.raises(GalleryKeyRequiredError):
        SQLiteGallery(tmp_path / "new.db", DEFAULT_EMBEDDER)


def test_swapped_rows_do_not_decrypt(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    cipher = GalleryCipher.generate()
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=cipher)
    first = gallery.add_templates("Ada", _random_templates(1, 4), create=True)[0]
    second = gallery.add_templates("Bob", _random_templates(1, 5), create=True)[0]
    gallery.close()
    with sqlite3.connect(path) as db:  # an attacker with write access moves Bob's template to Ada
        (bob_vector,) = db.execute(
            "SELECT vector FROM templates WHERE id = ?", (second,)
        ).fetchone()
        db.execute("UPDATE templates SET vector = ? WHERE id = ?", (bob_vector, first))
    with pytest.raises(GalleryKeyMismatchError):
        SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=cipher).template_matrix()


def test_erasing_from_an_encrypted_gallery_leaves_nothing(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    path = tmp_path / "g.db"
    key_file = tmp_path / "k.key"
    write_key_file(key_file)
    with FaceLens(gallery=path, key_file=key_file) as lens:
        lens.enroll("Eileen Collins", [astronaut])
        gallery = lens.gallery
        gallery.add_templates("Keeper Person", _random_templates(3, 6), create=True)
        with sqlite3.connect(path) as db:
            erased_blobs = [
                blob
                for row in db.execute(
                    "SELECT t.vector, t.crop FROM templates t JOIN people p ON p.id = t.person_id "
                    "WHERE p.name = 'Eileen Collins'"
                )
                for blob in row
            ]
            kept_blobs = [
                bytes(r[0])
                for r in db.execute(
                    "SELECT t.vector FROM templates t JOIN people p ON p.id = t.person_id "
                    "WHERE p.name = 'Keeper Person'"
                )
            ]
        assert _leaks(erased_blobs, _file_bytes(path), 32) > 0  # the ciphertext was there
        assert lens.erase("Eileen Collins") == 1
        after = _file_bytes(path)
        assert b"Eileen Collins" not in after
        assert _leaks(erased_blobs, after, 16) == 0  # not even its ciphertext remains
        assert _leaks(kept_blobs, after, 32) == len(kept_blobs) * len(_chunks(kept_blobs[0], 32))
        assert [p.name for p in lens.people()] == ["Keeper Person"]
        assert gallery.template_matrix().vectors.shape == (3, 128)


def test_rotation_re_encrypts_everything(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    old_key, new_key = tmp_path / "old.key", tmp_path / "new.key"
    old = write_key_file(old_key)
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=old)
    gallery.add_templates("Ada", _random_templates(6, 7), create=True)
    gallery.add_templates("Bob", _random_templates(4, 8, crops=False), create=True)
    before_vectors, before_crops = _secrets(gallery)
    before_ids = gallery.template_matrix().template_ids.copy()
    with sqlite3.connect(path) as db:
        old_blobs = [bytes(r[0]) for r in db.execute("SELECT vector FROM templates")]
    stale = SQLiteGallery(
        path, DEFAULT_EMBEDDER, cipher=old
    )  # another process, still on the old key
    gallery.close()

    result = _run_cli(
        "--gallery", path, "--key-file", old_key, "gallery", "rotate-key", "--new-key-file", new_key
    )
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 10 templates" in result.stderr and new_key.exists()

    with pytest.raises(GalleryKeyMismatchError):
        SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=read_key_file(old_key))
    with pytest.raises(GalleryKeyMismatchError, match="re-keyed"):
        stale.template_matrix()
    with pytest.raises(GalleryKeyMismatchError, match="re-keyed"):
        stale.add_templates("Ada", _random_templates(1, 9))
    stale.close()
    rotated = SQLiteGallery(path, DEFAULT_EMBEDDER, cipher=read_key_file(new_key))
    after_vectors, after_crops = _secrets(rotated)
    assert after_vectors == before_vectors and after_crops == before_crops
    np.testing.assert_array_equal(rotated.template_matrix().template_ids, before_ids)
    assert rotated.integrity_check() == "ok"
    rotated.close()
    raw = _file_bytes(path)
    assert _leaks(old_blobs, raw, 16) == 0  # the old ciphertexts are gone from the file
    assert _leaks(before_vectors, raw) == 0


def test_cli_encrypts_an_existing_gallery_and_refuses_without_key(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    gallery = SQLiteGallery(path, DEFAULT_EMBEDDER)
    gallery.add_templates("Ada", _random_templates(5, 10), create=True)
    vectors, crops = _secrets(gallery)
    gallery.close()
    assert _leaks(vectors, _file_bytes(path)) > 0

    key = tmp_path / "k.key"
    result = _run_cli("--gallery", path, "gallery", "encrypt", "--new-key-file", key)
    assert result.returncode == 0, result.stderr
    assert "wrote a new key" in result.stderr and "encrypted 5 templates" in result.stderr
    raw = _file_bytes(path)
    assert _leaks(vectors, raw) == 0 and _leaks(crops, raw, 32) == 0

    info = _run_cli("--gallery", path, "gallery", "info", "--json")
    assert '"encryption": "aes-256-gcm-v1"' in info.stdout
    refused = _run_cli("--gallery", path, "people", "list")
    assert refused.returncode == 1 and "is encrypted" in refused.stderr
    wrong = tmp_path / "wrong.key"
    write_key_file(wrong)
    refused = _run_cli("--gallery", path, "--key-file", wrong, "people", "list", "--json")
    assert refused.returncode == 1 and "does not open" in refused.stderr
    listed = _run_cli(
        "--gallery", path, "people", "list", "--json", env_extra={KEY_FILE_ENV: str(key)}
    )
    assert listed.returncode == 0 and '"templates": 5' in listed.stdout

    again = _run_cli(
        "--gallery", path, "--key-file", key, "gallery", "encrypt", "--new-key-file", key
    )
    assert again.returncode == 1 and "already encrypted" in again.stderr

    back = _run_cli("--gallery", path, "--key-file", key, "gallery", "decrypt", "--yes")
    assert back.returncode == 0, back.stderr
    plain = SQLiteGallery(path, DEFAULT_EMBEDDER)
    assert _secrets(plain) == (vectors, crops)
    plain.close()
