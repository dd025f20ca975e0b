"""Pydantic shapes of the JSON the service answers with (they make the OpenAPI schema)."""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ERROR_RESPONSES",
    "RenameRequest",
    "SessionRequest",
    "name_character_refused",
    "name_pattern",
]


class ErrorDetail(BaseModel):
    code: str = Field(description="A FaceLensError code, e.g. no_face, unauthenticated")
    message: str = Field(description="What went wrong and what to do about it")
    details: Any | None = Field(default=None, description="Extra data, e.g. per-photo outcomes")


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "No valid API key",
        403: "The key's role is too low",
        404: "Not found",
        408: "The request body was sent too slowly",
        409: "Conflict with the gallery's state",
        413: "Request or image too large",
        415: "Wrong content type",
        422: "The input was unusable (no face, not an image, bad parameter)",
        503: "Busy: retry later",
    }.items()
}


def name_character_refused(char: str) -> bool:
    """The one name rule, per character (``gallery.store.clean_name`` refuses the same):
    ``/``, and every character that is not printable except spaces (Unicode Zs, which are
    collapsed): control (Cc), formatting such as bidirectional overrides (Cf), line and
    paragraph separators (Zl, Zp), private-use (Co), surrogate (Cs), unassigned (Cn)."""
    return char == "/" or (not char.isprintable() and unicodedata.category(char) != "Zs")


def _class_item(code: int) -> str:
    # BMP characters as \uXXXX (Python re, ECMA 262 and Rust regex read them alike); the
    # others literally (no surrogates: they cannot be sent in UTF-8 anyway).
    return f"\\u{code:04x}" if code < 0x10000 else chr(code)


def _character_class(refused: bool) -> str:
    """The body of a regex class: the refused characters, or the spaces that are collapsed."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        wanted = name_character_refused(char) if refused else unicodedata.category(char) == "Zs"
        if wanted and ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        elif wanted:
            ranges.append((code, code))
    return "".join(
        _class_item(a) if a == b else f"{_class_item(a)}-{_class_item(b)}" for a, b in ranges
    )


@cache
def name_pattern() -> str:
    """NAME_PATTERN: the regex (JSON Schema ``pattern``) of a person's name as given.

    No refused character (:func:`name_character_refused`), at least one that is not a
    space, and not ``.`` or ``..`` once spaces are trimmed. Built from this Python's Unicode
    tables (so it agrees with the rule exactly), once per process (about a second). The
    final ``(?!\n)`` changes nothing in ECMA 262; in Python's ``re`` it stops ``$`` from
    matching before a trailing newline.
    """
    refused, spaces = _character_class(True), _character_class(False)
    return (
        f"^(?![{spaces}]*\\.\\.?[{spaces}]*$)[^{refused}]*[^{refused}{spaces}][^{refused}]*$(?!\\n)"
    )


class RenameRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The new name")


class SessionRequest(BaseModel):
    key: str = Field(min_length=1, max_length=200, description="An API key fl_<id>_<secret>")
