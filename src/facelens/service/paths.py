"""Server paths never reach a client: messages name the user's upload instead.

A job's input is stored as ``<state dir>/jobs/<id>/input.<ext>``; a decoder or
prober that fails on it names that path. :func:`hide_server_paths` rewrites
such text before it is stored for the client or sent: a path given in
``named`` becomes the name the client knows (the upload's original file
name), and any other path under one of ``roots`` becomes its last component.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from facelens.errors import FaceLensError

__all__ = ["hide_paths_in_error", "hide_server_paths"]


def _spellings(path: Path, *, as_given: bool = True) -> list[str]:
    """The ways ``path`` may be printed: as given, absolute and resolved; longest first."""
    forms = {str(path.absolute())} | ({str(path)} if as_given else set())
    with contextlib.suppress(OSError):
        forms.add(str(path.resolve()))
    return sorted((f for f in forms if f not in ("", ".", "/")), key=len, reverse=True)


def hide_server_paths(
    text: str, named: Mapping[Path, str] | None = None, roots: Iterable[Path] = ()
) -> str:
    """``text`` with every path of ``named`` replaced by its name and every other path under
    one of ``roots`` (the server's folders) replaced by its base name."""
    for path, name in (named or {}).items():
        for form in _spellings(path):
            text = text.replace(form, name)
    for root in roots:
        for form in _spellings(root, as_given=False):  # a relative one could match words
            pattern = re.escape(form) + r"(?:/[^\s'\"`]*)?"
            text = re.sub(pattern, lambda match: Path(match.group(0)).name, text)
    return text


def hide_paths_in_error(
    error: FaceLensError, named: Mapping[Path, str] | None = None, roots: Iterable[Path] = ()
) -> FaceLensError:
    """``error`` (changed in place, and returned) with :func:`hide_server_paths` applied to its
    message."""
    message = str(error)
    public = hide_server_paths(message, named, roots)
    if public != message:
        error.args = (public,)
    return error
