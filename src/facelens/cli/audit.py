"""``facelens audit``: who did what to which person or photo, and when."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import click

from facelens.cli.common import friendly_errors, json_option
from facelens.cli.keys import open_state, service_dir_option
from facelens.cli.output import console, emit_json, print_table
from facelens.errors import FaceLensError
from facelens.service.audit import AuditEntry, AuditLog
from facelens.service.settings import resolve_service_dir
from facelens.service.state import StateDB

__all__ = ["audit_cli_erasure", "command"]


def _utc_iso(value: str | None) -> str | None:
    """``--since`` as the log writes its times (UTC, ISO, milliseconds), so that comparing
    the text compares the times; anything not an ISO time is a usage error (before, any
    text was compared as text: ``--since yesterday`` listed nothing, silently)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a time: give an ISO time such as 2026-12-07 or "
            "2026-12-07T08:30 (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@click.command("audit")
@click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="Newest entries shown."
)
@click.option("--action", default=None, help="Only this action (enroll, identify, erase, ...).")
@click.option(
    "--since",
    default=None,
    callback=lambda _ctx, _param, value: _utc_iso(value),
    help="Only entries at or after this time: ISO, e.g. 2026-12-07 or 2026-12-07T08:30 "
    "(UTC unless it names its zone).",
)
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
    entries = AuditLog(open_state(ctx, service_dir, create=False)).entries(
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
                _actor(e),
                e.action,
                e.target or "",
                json.dumps(e.detail, ensure_ascii=False)[:120],
                e.outcome,
            ]
            for e in entries
        ],
    )


def _actor(entry: AuditEntry) -> str:
    if entry.key_id:
        return f"{entry.key_id} ({entry.key_name})"
    if entry.role == "cli":
        return f"cli ({entry.key_name})"
    presented = entry.detail.get("key_id")
    return f"unknown key {presented}" if presented else "no key"


def audit_cli_erasure(
    ctx: click.Context,
    action: str,
    name: str,
    detail: dict[str, Any],
    *,
    forget: bool = False,
) -> None:
    """Write an erasure done from the command line to the service's audit log (actor ``cli``
    and the OS user) and, with ``forget``, replace the person's name in every entry by its
    keyed pseudonym. The erasure is already done: a log that cannot be written is a warning."""
    try:
        folder = resolve_service_dir(ctx.ensure_object(dict).get("gallery"))
        state = StateDB(folder / "service.db")
    except (FaceLensError, OSError, ValueError) as error:
        console.print(
            f"warning: the erasure is done but the audit log could not be written: {error}",
            markup=False,
        )
        return
    try:
        log = AuditLog(state)
        log.record_cli(action, name, detail)
        if forget:
            log.forget(name)
    except (FaceLensError, OSError, sqlite3.Error) as error:
        console.print(
            f"warning: the erasure is done but the audit log could not be written: {error}",
            markup=False,
        )
    finally:
        state.close()
