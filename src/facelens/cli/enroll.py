"""``facelens enroll``: add photos of one person to the gallery."""

from __future__ import annotations

import click

from facelens.apps.enroll import EnrollOutcome, enroll_person
from facelens.cli.common import INPUT_PATHS, friendly_errors, get_lens, image_paths, json_option
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar, shown
from facelens.errors import InputError, MultipleFacesError, PersonNotFoundError
from facelens.gallery.store import clean_name
from facelens.pipeline.face_choice import FaceChoice

__all__ = ["command"]


def _face_choice(ctx: click.Context, param: click.Parameter, value: str) -> FaceChoice:
    """``--face``: ``only``, ``largest`` or ``X,Y`` (:meth:`FaceChoice.parse`)."""
    try:
        return FaceChoice.parse(value)
    except InputError as error:
        raise click.BadParameter(str(error), ctx, param) from None


@click.command("enroll")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=INPUT_PATHS)
@click.option(
    "--force",
    is_flag=True,
    help="Save a photo even when another enrolled person matches it better than NAME.",
)
@click.option(
    "--face",
    "choice",
    metavar="only|largest|X,Y",
    default="only",
    callback=_face_choice,
    show_default=True,
    help="Which face of each photo: its only usable face, the largest usable face, or "
    "the face whose box holds the point X,Y (pixels from the photo's top-left corner; "
    "`facelens detect PHOTO` lists the boxes as x, y, width, height).",
)
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    name: str,
    images: tuple[str, ...],
    force: bool,
    choice: FaceChoice,
    as_json: bool,
) -> None:
    """Enroll NAME from IMAGES (files or folders). Each photo must show NAME alone,
    unless --face picks NAME's face in it.

    NAME: 1 to 200 printable characters; no control or bidirectional-override
    characters, no '/'. A photo already in the gallery is rejected; so is one that
    another enrolled person matches better than NAME, unless --force. Exit status 1
    when any photo was rejected (every photo is still listed).
    """
    lens = get_lens(ctx)
    try:
        lens.gallery.get_person(name)
    except PersonNotFoundError:
        clean_name(name)  # a new person's name is refused before any photo is looked for
    paths = image_paths(images)
    with progress_bar(f"Enrolling {shown(name)}", len(paths)) as progress:

        def step(_: EnrollOutcome) -> None:
            advance(progress)

        report = enroll_person(
            lens.pipeline,
            lens.gallery,
            name,
            paths,
            screen=lens.gallery_search.screen,
            force=force,
            choice=choice,
            on_item=step,
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        rows = [
            [
                shown(o.source),
                "added" if o.accepted else "rejected",
                shown(o.reason) if o.reason else f"quality {o.quality:.2f}",
            ]
            for o in report.outcomes
        ]
        print_table(f"Enrolling {shown(report.name)}", ["photo", "result", "detail"], rows)
        total = report.person.templates if report.person else 0
        console.print(
            f"{shown(report.name)}: {len(report.accepted)} added, {len(report.rejected)} rejected, "
            f"{total} in the gallery"
        )
    if any(o.code == MultipleFacesError.code for o in report.outcomes):
        click.echo(
            "a photo with several faces needs --face largest, or --face X,Y for the face "
            "at that point (`facelens detect PHOTO` lists the boxes)",
            err=True,
        )
    if report.conflicts:
        click.echo(
            f"{len(report.conflicts)} photo(s) match someone else better than {report.name!r} "
            "and were not saved; if they really are of this person, run again with --force",
            err=True,
        )
    if report.rejected:
        ctx.exit(1)
