"""Options and objects shared by the commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from facelens.api import FaceLens
from facelens.errors import FaceLensError
from facelens.io.walk import IMAGE_SUFFIXES, expand_image_paths
from facelens.match.calibration import DEFAULT_FMR

__all__ = [
    "INPUT_PATHS",
    "friendly_errors",
    "get_lens",
    "image_paths",
    "json_option",
    "operating_point_options",
]

F = TypeVar("F", bound=Callable[..., Any])

INPUT_PATHS = click.Path(readable=False)
"""Type of the files and folders a batch command reads. Only a path type for the help:
a file that cannot be read is one bad item, reported and skipped by the command, not a
usage error that refuses the whole batch (as click's own read check would)."""

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Write JSON to stdout instead of a table."
)


def operating_point_options(func: F) -> F:
    """``--fmr`` and ``--threshold``: how strict a match must be."""
    func = click.option(
        "--threshold",
        type=float,
        default=None,
        help="Raw cosine threshold instead of --fmr (the FMR it gives is reported).",
    )(func)
    func = click.option(
        "--fmr",
        type=float,
        default=None,
        help="Operating point as a false-match rate per comparison (default: the gallery "
        f"calibration's, else {DEFAULT_FMR:g}).",
    )(func)
    return func


def get_lens(ctx: click.Context) -> FaceLens:
    """The FaceLens of this invocation, made once from the group options."""
    obj = ctx.ensure_object(dict)
    if "lens" not in obj:
        obj["lens"] = FaceLens(
            gallery=obj.get("gallery"),
            embedder=obj.get("embedder"),
            max_side=obj.get("max_side"),
            key_file=obj.get("key_file"),
        )
        ctx.call_on_close(obj["lens"].close)
    lens: FaceLens = obj["lens"]
    return lens


def friendly_errors(func: F) -> F:
    """Turn a FaceLensError into a one-line message on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FaceLensError as error:
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]


def image_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files a batch command reads (:func:`~facelens.io.walk.expand_image_paths`); a
    note on stderr for each folder given that holds no image, so that an empty run says why."""
    found: list[Path] = []
    for raw in paths:
        files = expand_image_paths([raw])
        if not files and Path(raw).is_dir():
            endings = ", ".join(sorted(IMAGE_SUFFIXES))
            click.echo(f"{raw}: no image in this folder (looked for {endings})", err=True)
        found.extend(files)
    return found
