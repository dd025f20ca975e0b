"""Small helpers the route modules share: parameters, names, the operating point."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from facelens.service.errors import InvalidRequestError

PersonName = Annotated[
    str, Path(min_length=1, max_length=200, description="A person's name as stored")
]
Fmr = Annotated[
    float | None,
    Query(gt=0, lt=1, description="Operating point as a false-match rate per comparison"),
]
Threshold = Annotated[
    float | None,
    Query(
        ge=-1, le=1, description="A raw cosine threshold instead of fmr (wins if both are given)"
    ),
]
TopK = Annotated[int, Query(ge=1, le=50, description="Candidates listed per face")]


def clean_name(name: str) -> str:
    """A person's name with whitespace collapsed; 1-200 printable characters."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 200:
        raise InvalidRequestError("a person's name must have 1 to 200 characters")
    if not all(ch.isprintable() for ch in cleaned):
        raise InvalidRequestError("a person's name cannot hold control characters")
    return cleaned
