"""The ``facelens`` command: one group, one module per command family."""

from __future__ import annotations

import click

from facelens.cli import (
    analyze,
    anonymize,
    audit,
    calibrate,
    cluster,
    demo,
    detect,
    enroll,
    evaluate,
    gallery,
    identify,
    ingest,
    keys,
    models,
    people,
    search,
    serve,
    verify,
    video,
)
from facelens.cli.output import print_exposed_file_warnings
from facelens.models import registry
from facelens.pipeline.detect import DEFAULT_MAX_SIDE
from facelens.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--gallery",
    type=click.Path(dir_okay=False),
    default=None,
    help="Gallery file (default: $FACELENS_GALLERY, else the user data folder).",
)
@click.option(
    "--max-side",
    type=int,
    default=None,
    help=f"Longest side in pixels of the copy searched for faces (default {DEFAULT_MAX_SIDE}).",
)
@click.option(
    "--embedder",
    default=None,
    help="Embedder id (see `facelens models`); default: the gallery's own, else "
    f"{registry.DEFAULT_EMBEDDER}.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Key of an encrypted gallery (default: $FACELENS_GALLERY_KEY_FILE, "
    "else the key in $FACELENS_GALLERY_KEY).",
)
@click.version_option(__version__, prog_name="facelens")
@click.pass_context
def cli(
    ctx: click.Context,
    gallery: str | None,
    max_side: int | None,
    embedder: str | None,
    key_file: str | None,
) -> None:
    """Find faces, keep a gallery of known people, identify and verify them."""
    ctx.ensure_object(dict).update(
        {"gallery": gallery, "max_side": max_side, "embedder": embedder, "key_file": key_file}
    )
    print_exposed_file_warnings(ctx)  # a gallery others can read: one line on stderr


for module in (detect, enroll, people, identify, verify, evaluate, demo, models, gallery):
    cli.add_command(module.command)
for module in (calibrate,):  # the deployment's own calibration (facelens.match.deployment)
    cli.add_command(module.command)
for module in (serve, keys, audit):  # the REST service (facelens.service)
    cli.add_command(module.command)
cli.add_command(analyze.command)  # expression, apparent age and gender (facelens.analysis)
cli.add_command(analyze.video_command)  # expression over time per tracked face
cli.add_command(cluster.command)  # grouping unknown faces (facelens.cluster)
cli.add_command(anonymize.command)  # hiding faces in images and videos (facelens.privacy)
cli.add_command(video.command)  # faces in video: tracks and identities (facelens.video)
for module in (ingest, search):  # large collections, and where a person appears (facelens.ingest)
    cli.add_command(module.command)


def main() -> None:
    cli(prog_name="facelens")


if __name__ == "__main__":
    main()
