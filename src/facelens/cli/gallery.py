"""``facelens gallery``: the gallery file itself: its key, encryption and key rotation.

The key in force for the gallery is the group option ``--key-file``, else
``$FACELENS_GALLERY_KEY_FILE``, else ``$FACELENS_GALLERY_KEY`` (see
``facelens.gallery.protection``).
"""

from __future__ import annotations

from pathlib import Path

import click

from facelens.cli.common import friendly_errors, json_option, no_gallery, require_gallery
from facelens.cli.output import console, emit_json, print_table
from facelens.errors import GalleryError
from facelens.gallery import SQLiteGallery, resolve_gallery_path
from facelens.gallery.protection import (
    GalleryCipher,
    read_key_file,
    resolve_gallery_key,
    write_key_file,
)
from facelens.gallery.sqlite import stored_calibration, stored_meta

__all__ = ["command"]


@click.group("gallery")
def command() -> None:
    """The gallery file: encryption of templates at rest, key rotation, facts."""


def _path(ctx: click.Context) -> Path:
    """The gallery file of this invocation; refused in one line when it does not exist."""
    path = resolve_gallery_path(ctx.ensure_object(dict).get("gallery"))
    if not path.exists():
        raise no_gallery(path)
    return path


def _open(ctx: click.Context, cipher: GalleryCipher | None) -> SQLiteGallery:
    """The existing gallery of this invocation, opened with ``cipher`` for its own model."""
    path = _path(ctx)
    return SQLiteGallery(path, stored_meta(path)["model_id"], cipher=cipher)


def _new_key(path: str) -> GalleryCipher:
    """The key in ``path``, made (random, mode 0600) when the file does not exist yet."""
    if Path(path).expanduser().exists():
        return read_key_file(path)
    cipher = write_key_file(path)
    console.print(f"wrote a new key to {path} (fingerprint {cipher.fingerprint}); keep it safe")
    return cipher


@command.command("new-key")
@click.argument("key_file", type=click.Path(dir_okay=False))
@friendly_errors
def new_key(key_file: str) -> None:
    """Write a new random gallery key to KEY_FILE (mode 0600; never overwrites)."""
    cipher = write_key_file(key_file)
    console.print(f"wrote a new gallery key to {key_file} (fingerprint {cipher.fingerprint})")


@command.command("info")
@json_option
@click.pass_context
@friendly_errors
def info(ctx: click.Context, as_json: bool) -> None:
    """Model, encryption and size of the gallery (needs no key)."""
    path = _path(ctx)
    meta = stored_meta(path)
    facts = {
        "path": str(path),
        "model": meta.get("model_id"),
        "encryption": meta.get("encryption", "none"),
        "bytes": path.stat().st_size,
    }
    calibration = stored_calibration(path)
    if as_json:
        emit_json({**facts, "calibration": None if calibration is None else calibration.summary()})
        return
    facts["calibration"] = (
        "shipped (none fitted here)"
        if calibration is None
        else (
            f"{calibration.record['source']} (version {calibration.version}, "
            f"{calibration.record['people']} people, {calibration.created})"
        )
    )
    print_table("Gallery", ["fact", "value"], [[k, str(v)] for k, v in facts.items()])
    if calibration is not None:
        from facelens.cli.calibrate import print_calibration

        print_calibration(calibration)


@command.group("calibration")
def calibration_group() -> None:
    """The gallery's own calibration (fitted by `facelens calibrate`)."""


@calibration_group.command("remove")
@click.pass_context
@friendly_errors
def calibration_remove(ctx: click.Context) -> None:
    """Take the gallery's calibration out of force (kept in its history and audit)."""
    from facelens.cli.common import get_lens

    require_gallery(ctx)
    removed = get_lens(ctx).gallery.remove_calibration()
    console.print(
        "no calibration was in force"
        if removed is None
        else f"removed calibration {removed.id}; decisions use the shipped one again"
    )


@calibration_group.command("history")
@json_option
@click.pass_context
@friendly_errors
def calibration_history(ctx: click.Context, as_json: bool) -> None:
    """Every calibration the gallery has had, oldest first."""
    from facelens.cli.common import get_lens

    require_gallery(ctx)
    history = get_lens(ctx).gallery.calibration_history()
    if as_json:
        emit_json([c.summary() for c in history])
        return
    print_table(
        "Calibrations",
        ["version", "id", "embedder", "people", "created", "removed"],
        [
            [
                str(c.version),
                c.id,
                c.record["model_id"],
                str(c.record["people"]),
                c.created,
                c.removed or "in force",
            ]
            for c in history
        ],
    )


@command.command("encrypt")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Key to encrypt with (a new random key is written there if the file does not exist).",
)
@click.pass_context
@friendly_errors
def encrypt(ctx: click.Context, new_key_file: str) -> None:
    """Encrypt an unencrypted gallery's templates and face crops, in one transaction."""
    if "encryption" in stored_meta(_path(ctx)):
        raise GalleryError(f"{_path(ctx)} is already encrypted; use `facelens gallery rotate-key`")
    cipher = _new_key(new_key_file)
    gallery = _open(ctx, None)
    try:
        with console.status("encrypting every template and face crop"):
            rows = gallery.rekey(cipher)
    finally:
        gallery.close()
    console.print(
        f"encrypted {rows} templates of {gallery.path} under key {cipher.fingerprint}; "
        f"open it from now on with --key-file {new_key_file} (or $FACELENS_GALLERY_KEY_FILE)"
    )


@command.command("rotate-key")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new key (a new random key is written there if the file does not exist).",
)
@click.pass_context
@friendly_errors
def rotate_key(ctx: click.Context, new_key_file: str) -> None:
    """Re-encrypt the gallery under a new key in one transaction; the old key stops opening it."""
    old = resolve_gallery_key(ctx.ensure_object(dict).get("key_file"))
    if old is None:
        raise GalleryError(
            "give the current key with --key-file (or $FACELENS_GALLERY_KEY_FILE / "
            "$FACELENS_GALLERY_KEY) to rotate it"
        )
    gallery = _open(ctx, old)
    try:
        new = _new_key(new_key_file)
        if new.fingerprint == old.fingerprint:
            raise GalleryError("the new key is the current key; rotation needs another key")
        with console.status("re-encrypting every template and face crop"):
            rows = gallery.rekey(new)
    finally:
        gallery.close()
    console.print(
        f"re-encrypted {rows} templates of {gallery.path}: key {old.fingerprint} -> "
        f"{new.fingerprint}. The old key no longer opens it; point --key-file "
        f"(or $FACELENS_GALLERY_KEY_FILE) at {new_key_file}"
    )


@command.command("decrypt")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@friendly_errors
def decrypt(ctx: click.Context, yes: bool) -> None:
    """Store the templates unencrypted again (needs the current key)."""
    current = resolve_gallery_key(ctx.ensure_object(dict).get("key_file"))
    if current is None:
        raise GalleryError("give the current key with --key-file to decrypt the gallery")
    gallery = _open(ctx, current)
    try:
        if not yes:
            click.confirm(
                f"Store the templates of {gallery.path} unencrypted (biometric data in clear)?",
                abort=True,
            )
        rows = gallery.rekey(None)
    finally:
        gallery.close()
    console.print(f"decrypted {rows} templates of {gallery.path}; it now opens without a key")
