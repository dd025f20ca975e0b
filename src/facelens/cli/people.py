"""``facelens people``: list, show, rename and remove known people."""

from __future__ import annotations

import click

from facelens.cli.audit import audit_cli_erasure
from facelens.cli.common import friendly_errors, get_lens, json_option, require_gallery
from facelens.cli.output import console, emit_json, print_table, shown

__all__ = ["command"]


@click.group("people")
def command() -> None:
    """Manage the people of the gallery."""


@command.command("list")
@json_option
@click.pass_context
@friendly_errors
def list_people(ctx: click.Context, as_json: bool) -> None:
    """Everyone in the gallery with their number of templates."""
    require_gallery(ctx)
    people = get_lens(ctx).people()
    if as_json:
        emit_json(
            [
                {"id": p.id, "name": p.name, "templates": p.templates, "created_at": p.created_at}
                for p in people
            ]
        )
    else:
        print_table(
            "People",
            ["name", "templates", "enrolled"],
            [[shown(p.name), str(p.templates), p.created_at] for p in people],
        )


@command.command("show")
@click.argument("name")
@json_option
@click.pass_context
@friendly_errors
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """The templates of NAME (ids are what `people remove --template` takes)."""
    require_gallery(ctx)
    templates = get_lens(ctx).gallery.list_templates(name)
    if as_json:
        emit_json(
            [
                {
                    "id": t.id,
                    "source": t.source,
                    "quality": t.quality,
                    "model": t.model_id,
                    "created_at": t.created_at,
                }
                for t in templates
            ]
        )
    else:
        print_table(
            shown(name),
            ["template", "photo", "quality", "added"],
            [[str(t.id), shown(t.source), f"{t.quality:.2f}", t.created_at] for t in templates],
        )


@command.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
@friendly_errors
def rename(ctx: click.Context, old: str, new: str) -> None:
    """Rename OLD to NEW, keeping their templates."""
    require_gallery(ctx)
    person = get_lens(ctx).rename(old, new)
    console.print(f"renamed {shown(repr(old))} to {shown(repr(person.name))}")


@command.command("remove")
@click.argument("name")
@click.option(
    "--template",
    "template_id",
    type=int,
    default=None,
    help="Remove only this template (see `people show`), not the person.",
)
@click.pass_context
@friendly_errors
def remove(ctx: click.Context, name: str, template_id: int | None) -> None:
    """Erase NAME and every template and face crop of theirs from the gallery file."""
    require_gallery(ctx)
    lens = get_lens(ctx)
    if template_id is not None:
        owned = {t.id for t in lens.gallery.list_templates(name)}
        if template_id not in owned:
            raise click.ClickException(f"template {template_id} does not belong to {name!r}")
        lens.gallery.remove_template(template_id)
        lens.gallery_search.sync()
        audit_cli_erasure(ctx, "erase_photo", name, {"template": template_id})
        console.print(f"removed template {template_id} of {shown(repr(name))}")
        return
    removed = lens.erase(name)
    audit_cli_erasure(ctx, "erase", name, {"templates": removed}, forget=True)
    console.print(
        f"erased {shown(repr(name))} ({removed} templates); nothing of them remains in the gallery "
        "file, its search index or the cluster group named after them"
    )
