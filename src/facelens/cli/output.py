"""How commands talk to people and machines: tables and progress on stderr, JSON on stdout."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from facelens.io.private_files import ExposedFileWarning

__all__ = [
    "about",
    "advance",
    "console",
    "emit_json",
    "print_exposed_file_warnings",
    "print_table",
    "printable",
    "progress_bar",
    "shown",
    "warn_notes",
]


class _PrintableConsole(Console):
    r"""A console whose text arguments never carry a control character to the terminal: a
    file name holding ESC (``bad\x1b[2J.jpg``) is shown as ``bad\u001b[2J.jpg``, not
    obeyed (line breaks and tabs stay)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


def printable(text: str) -> str:
    r"""``text`` with every non-printable character but newline and tab as its ``\uXXXX``
    escape (rich markup left as it is; :func:`shown` also escapes markup)."""
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\u{ord(c):04x}" for c in text)


console = _PrintableConsole(stderr=True)
"""Human-facing messages go to stderr, so ``--json`` output on stdout stays parseable."""


def about(source: object, error: object) -> str:
    """``"<source>: <error>"`` for a line about one input, without naming it twice when the
    error's own text already starts with it (most errors name the file they are about)."""
    where, why = str(source), str(error)
    return why if why.startswith(f"{where}: ") else f"{where}: {why}"


def shown(text: str) -> str:
    """``text`` (a name, a file name) safe to print in a rich table or message: markup
    brackets escaped, and any character that is not printable (ESC, newline, a bidirectional
    override, e.g. in a name stored by an older version) shown as its ``\\uXXXX`` escape,
    so nothing a user typed can restyle, clear or reorder the terminal."""
    from rich.markup import escape

    visible = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return escape(visible)


def emit_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout."""
    json.dump(data, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Progress]:
    """A progress bar on stderr (hidden when stderr is not a terminal and CI is quiet)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with progress:
        progress.add_task(description, total=total)
        yield progress


def advance(progress: Progress, steps: int = 1) -> None:
    progress.advance(progress.task_ids[0], steps)


def warn_notes(record: dict[str, Any], notes: tuple[str, ...]) -> None:
    """Put an item's warnings in its JSON record (``warnings``) and on stderr."""
    if notes:
        record["warnings"] = list(notes)
    for note in notes:
        console.print(f"[yellow]warning[/yellow] {note}", markup=True, highlight=False)


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table for people, on stdout."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(printable(cell) for cell in row))
    Console().print(table)


def print_exposed_file_warnings(ctx: click.Context) -> None:
    """For this command, print each :class:`ExposedFileWarning` once on stderr as one line.

    (A gallery or index that other users can read: the line names the ``chmod`` that
    fixes it.) Other warnings are shown as Python shows them.
    """
    ctx.with_resource(warnings.catch_warnings())
    warnings.simplefilter("default", ExposedFileWarning)  # once per file
    show_others = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, ExposedFileWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            show_others(message, category, filename, lineno, file, line)

    warnings.showwarning = show
