"""Files and folders that only their owner may read: galleries, indexes, service state, jobs.

Everything facelens keeps about faces (templates, crops, codes, uploads and
job results) is biometric data, so what it creates is mode ``0600`` (files)
and ``0700`` (folders), whatever the umask. The modes are given when the file
is created (``os.open`` with a mode, ``mkdir(mode=...)``), so there is no
moment when another local user could open it. No process-wide umask change is
needed (it would race with other threads).

SQLite creates a database's ``-wal`` and ``-shm`` files with the mode of the
database file itself: :func:`create_private_file` makes that file ``0600``
before SQLite opens it. A file that already exists keeps its mode; when group
or others can read it, :func:`warn_if_exposed` says so with the ``chmod`` that
fixes it (a :class:`ExposedFileWarning`, which the CLI prints once on stderr).
"""

from __future__ import annotations

import os
import shlex
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "ExposedFileWarning",
    "create_private_file",
    "make_private_dir",
    "make_tree_private",
    "open_private",
    "warn_if_exposed",
    "write_private_text",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class ExposedFileWarning(UserWarning):
    """A file holding biometric data can be read by other local users (group or others)."""


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; a folder it creates is mode 0700.

    Existing folders keep their mode: they may be the user's own (a home folder,
    a project folder).
    """
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made at the same moment by another process
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is reduced by the umask only


def create_private_file(path: Path) -> bool:
    """Create an empty ``path`` with mode 0600 unless it exists; True when it was created."""
    make_private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(descriptor)
    return True


def open_private(path: Path) -> BinaryIO:
    """``open(path, "wb")``, but the file is mode 0600 (also when it existed already)."""
    make_private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        return os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise


def write_private_text(path: Path, text: str) -> None:
    """``path.write_text(text)`` (UTF-8), with the file mode 0600."""
    with open_private(path) as handle:
        handle.write(text.encode("utf-8"))


def make_tree_private(folder: Path) -> None:
    """Make every file under ``folder`` 0600 and every folder 0700 (for files that a
    library wrote with its own mode, such as a video encoder's output)."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, PRIVATE_DIR_MODE)
        for name in dirs:
            os.chmod(os.path.join(root, name), PRIVATE_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), PRIVATE_FILE_MODE, follow_symlinks=False)


def exposed(path: Path) -> bool:
    """True when group or others may read or write ``path``."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(stat.S_IMODE(mode) & 0o077)


def warn_if_exposed(path: Path, what: str) -> None:
    """Warn (:class:`ExposedFileWarning`) when group or others can read the file ``path``."""
    if not exposed(path):
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    siblings = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    names = " ".join(shlex.quote(str(p)) for p in (path, *siblings) if p.exists())
    warnings.warn(
        ExposedFileWarning(
            f"{what} {path} is open to other users (mode {mode:04o}) and holds "
            f"biometric data; make it private with: chmod 600 {names}"
        ),
        stacklevel=2,
    )
