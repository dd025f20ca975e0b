"""Options and objects shared by the commands."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from facelens.api import FaceLens
from facelens.errors import FaceLensError
from facelens.gallery import resolve_gallery
from facelens.io.walk import IMAGE_SUFFIXES, expand_image_paths
from facelens.match.calibration import DEFAULT_FMR

__all__ = [
    "INPUT_PATHS",
    "FiniteFloat",
    "cannot_write",
    "check_time_window",
    "friendly_errors",
    "get_lens",
    "image_paths",
    "json_option",
    "no_gallery",
    "no_library",
    "operating_point_options",
    "require_gallery",
    "writable_file",
    "writable_folder",
]

F = TypeVar("F", bound=Callable[..., Any])

INPUT_PATHS = click.Path(readable=False)
"""Type of the files and folders a batch command reads. Only a path type for the help:
a file that cannot be read is one bad item, reported and skipped by the command, not a
usage error that refuses the whole batch (as click's own read check would)."""


class FiniteFloat(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf`` (click lets them
    through every range: each comparison with NaN is false)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def check_time_window(start: float | None, end: float | None) -> None:
    """Refuse a ``--start``/``--end`` window that holds no time (``--end`` at or before
    ``--start``, which defaults to 0) as a usage error."""
    if end is not None and end <= (start or 0.0):
        raise click.BadParameter(
            f"{end:g} s is not after --start ({start or 0.0:g} s)", param_hint="--end"
        )


def cannot_write(path: str | Path, error: OSError) -> click.ClickException:
    """The one-line error for an output the user named that cannot be written."""
    return click.ClickException(f"cannot write {path}: {error.strerror or error}")


def writable_folder(path: str) -> Path:
    """Make the output folder ``path`` (and its parents) before any work, and check that a
    file can be made in it; a :class:`click.ClickException` naming ``path`` if not."""
    folder = Path(path)
    _check_folder_can_hold(folder, path)
    return folder


def writable_file(path: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Check before any work that the output file ``path`` can be written: it is none of
    ``inputs`` (writing it would destroy that input), its folder is made and a file can be
    made in it (``path`` itself is written later, by the command)."""
    target = Path(path)
    for given in inputs:
        if is_same_file(target, Path(given)):
            raise click.UsageError(
                f"{path} is the input {given}: writing it would destroy the original; "
                "choose another file"
            )
    _check_folder_can_hold(target.parent, path)
    return target


def is_same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one existing file (links and ``..`` resolved)."""
    try:
        return first.exists() and second.exists() and first.samefile(second)
    except OSError:
        return False


def _check_folder_can_hold(folder: Path, given: str) -> None:
    """Make ``folder`` and a temporary file in it, or raise the error naming ``given``."""
    for above in (folder, *folder.parents):  # a file where a folder must be: say which
        if above.exists():
            if not above.is_dir():
                raise click.ClickException(f"cannot write {given}: {above} is not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise cannot_write(given, error) from None


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


def no_gallery(path: str | Path) -> click.ClickException:
    """The one-line error for a gallery file that is not there (``path`` as the user gave it:
    a relative path stays relative), with the command that makes one."""
    return click.ClickException(
        f"there is no gallery at {path}; `facelens enroll NAME PHOTO...` makes it"
    )


def require_gallery(ctx: click.Context) -> None:
    """Refuse a command that only reads or changes what is in the gallery of this invocation
    when its gallery file does not exist (:func:`no_gallery`, exit status 1), before anything
    opens it: opening makes an empty gallery and its folders, and a typo in ``--gallery``
    would then show an empty gallery instead of an error. A PostgreSQL URL passes (its
    database is the server's)."""
    location = resolve_gallery(ctx.ensure_object(dict).get("gallery"))
    if isinstance(location, Path) and not location.exists():
        raise no_gallery(location)


def no_library(location: str | Path) -> click.ClickException:
    """The one-line error for a library (``facelens ingest``, ``facelens cluster``) that is
    not there, with the commands that make one."""
    place = f"at {location}" if isinstance(location, Path) else "in the gallery's database"
    return click.ClickException(
        f"there is no library {place}; "
        "`facelens ingest PHOTOS...` or `facelens cluster PHOTOS...` makes it"
    )


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
    note on stderr for each folder given that holds no image (with how many other files it
    holds, e.g. photos without an extension), and when nothing at all is left to read, a
    one-line error (exit 1) instead of an empty run that looks like success."""
    given = list(paths)
    found: list[Path] = []
    for raw in given:
        files = expand_image_paths([raw])
        if not files and Path(raw).is_dir():
            endings = ", ".join(sorted(IMAGE_SUFFIXES))
            others = sum(1 for p in Path(raw).rglob("*") if p.is_file())
            left = f"; its {others} other file(s) were left" if others else ""
            click.echo(f"{raw}: no image in this folder (looked for {endings}){left}", err=True)
        found.extend(files)
    if given and not found:
        raise click.ClickException("nothing to read: no image in " + ", ".join(map(str, given)))
    return found
