"""``facelens models``: what models are registered, where they come from, their licences."""

from __future__ import annotations

import click

from facelens.cli.common import json_option
from facelens.cli.output import emit_json, print_table
from facelens.models.registry import all_specs


@click.command("models")
@json_option
def command(as_json: bool) -> None:
    """List registered models with source, sha256 and licence."""
    specs = [s.describe() for s in all_specs()]
    if as_json:
        emit_json(specs)
    else:
        print_table(
            "Models",
            ["id", "task", "source", "licence"],
            [[s["id"], s["task"], s["source"], s["licence"]] for s in specs],
        )
