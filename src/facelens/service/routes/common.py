"""Small helpers the route modules share: parameters, names, the operating point."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from facelens.gallery import store

__all__ = ["Fmr", "PersonName", "Threshold", "TopK", "clean_name"]

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
    """A person's name by the one rule of :func:`facelens.gallery.store.clean_name` (the
    CLI and the Python API apply it too); a refused name is a 422 ``invalid_name``."""
    return store.clean_name(name)
