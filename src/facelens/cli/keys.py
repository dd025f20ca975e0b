"""``facelens keys``: create, list and revoke the service's API keys."""

from __future__ import annotations

import click

from facelens.cli.common import friendly_errors, json_option
from facelens.cli.output import console, emit_json, print_table
from facelens.service.audit import AuditLog
from facelens.service.keys import ROLES, KeyStore
from facelens.service.settings import resolve_service_dir
from facelens.service.state import StateDB

__all__ = ["command", "open_state", "service_dir_option"]

service_dir_option = click.option(
    "--service-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State folder of the service (default: <gallery>.service beside the gallery).",
)


def open_state(ctx: click.Context, service_dir: str | None, *, create: bool = True) -> StateDB:
    """The service's state file for this invocation's --gallery (closed with the command).

    Made with its folder when missing, unless ``create`` is false: then a missing file is
    refused in one line naming it (exit status 1), and nothing is made.
    """
    folder = resolve_service_dir(ctx.ensure_object(dict).get("gallery"), service_dir)
    path = folder / "service.db"
    if not create and not path.exists():
        raise click.ClickException(
            f"there is no service state at {path}; "
            "`facelens keys create --role ROLE` or `facelens serve` makes it"
        )
    state = StateDB(path)
    ctx.call_on_close(state.close)
    return state


@click.group("keys")
def command() -> None:
    """API keys of `facelens serve` (stored hashed; roles query < enroll < admin)."""


@command.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the key may do.")
@click.option("--name", default=None, help="Who or what uses it (shown in the audit log).")
@service_dir_option
@json_option
@click.pass_context
@friendly_errors
def create(
    ctx: click.Context, role: str, name: str | None, service_dir: str | None, as_json: bool
) -> None:
    """Create a key. The key is printed once: it cannot be shown again."""
    state = open_state(ctx, service_dir)
    key, secret = KeyStore(state).create(name or f"{role} key", role)
    AuditLog(state).record(
        None, "create_key", key.id, {"name": key.name, "role": key.role, "via": "cli"}
    )
    if as_json:
        emit_json({**key.to_dict(), "key": secret})
        return
    console.print(f"created {key.role} key {key.id} ({key.name}); store it now, it is not kept:")
    click.echo(secret)


@command.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@service_dir_option
@json_option
@click.pass_context
@friendly_errors
def list_keys(ctx: click.Context, show_all: bool, service_dir: str | None, as_json: bool) -> None:
    """Keys by id, name and role (never their secrets)."""
    keys = KeyStore(open_state(ctx, service_dir, create=False)).list_keys(include_revoked=show_all)
    if as_json:
        emit_json([k.to_dict() for k in keys])
        return
    print_table(
        "API keys",
        ["id", "name", "role", "created", "revoked"],
        [[k.id, k.name, k.role, k.created_at, k.revoked_at or ""] for k in keys],
    )


@command.command("revoke")
@click.argument("key_id")
@service_dir_option
@click.pass_context
@friendly_errors
def revoke(ctx: click.Context, key_id: str, service_dir: str | None) -> None:
    """Revoke KEY_ID at once (running servers refuse it from the next request)."""
    state = open_state(ctx, service_dir, create=False)
    key = KeyStore(state).revoke(key_id)
    AuditLog(state).record(None, "revoke_key", key.id, {"name": key.name, "via": "cli"})
    console.print(f"revoked key {key.id} ({key.name}, {key.role})")
