"""``facelens audit``: who did what to which person or photo, and when."""

from __future__ import annotations

import json

import click

from facelens.cli.common import friendly_errors, json_option
from facelens.cli.keys import open_state, service_dir_option
from facelens.cli.output import emit_json, print_table
from facelens.service.audit import AuditLog


@click.command("audit")
@click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="Newest entries shown."
)
@click.option("--action", default=None, help="Only this action (enroll, identify, erase, ...).")
@click.option("--since", default=None, help="Only entries at or after this ISO time (UTC).")
@service_dir_option
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    limit: int,
    action: str | None,
    since: str | None,
    service_dir: str | None,
    as_json: bool,
) -> None:
    """The service's audit log, oldest first (never templates or images)."""
    entries = AuditLog(open_state(ctx, service_dir)).entries(
        limit=limit, action=action, since=since
    )
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    print_table(
        "Audit log",
        ["time (UTC)", "key", "action", "target", "detail", "outcome"],
        [
            [
                e.at,
                f"{e.key_id} ({e.key_name})" if e.key_id else "cli",
                e.action,
                e.target or "",
                json.dumps(e.detail, ensure_ascii=False)[:120],
                e.outcome,
            ]
            for e in entries
        ],
    )
