"""How commands talk to people and machines: tables and progress on stderr, JSON on stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True)
"""Human-facing messages go to stderr, so ``--json`` output on stdout stays parseable."""


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


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table for people, on stdout."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
