"""``facelens enroll``: add photos of one person to the gallery."""

from __future__ import annotations

import click

from facelens.apps.enroll import EnrollOutcome, enroll_person
from facelens.cli.common import INPUT_PATHS, friendly_errors, get_lens, json_option
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.io.walk import expand_image_paths


@click.command("enroll")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=INPUT_PATHS)
@json_option
@click.pass_context
@friendly_errors
def command(ctx: click.Context, name: str, images: tuple[str, ...], as_json: bool) -> None:
    """Enroll NAME from IMAGES (files or folders). Each photo must show NAME alone."""
    lens = get_lens(ctx)
    paths = expand_image_paths(images)
    with progress_bar(f"Enrolling {name}", len(paths)) as progress:

        def step(_: EnrollOutcome) -> None:
            advance(progress)

        report = enroll_person(lens.analyzer, lens.gallery, name, paths, on_item=step)
    if as_json:
        emit_json(report.to_dict())
    else:
        rows = [
            [
                o.source,
                "added" if o.accepted else "rejected",
                o.reason or f"quality {o.quality:.2f}",
            ]
            for o in report.outcomes
        ]
        print_table(f"Enrolling {name}", ["photo", "result", "detail"], rows)
        total = report.person.templates if report.person else 0
        console.print(
            f"{name}: {len(report.accepted)} added, {len(report.rejected)} rejected, {total} in the gallery"
        )
    if not report.accepted:
        ctx.exit(1)
