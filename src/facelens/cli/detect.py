"""``facelens detect``: faces, landmarks and quality of each image."""

from __future__ import annotations

from typing import Any

import click

from facelens.apps.draw import draw_faces, save_drawing
from facelens.cli.common import (
    INPUT_PATHS,
    cannot_write,
    friendly_errors,
    get_lens,
    image_paths,
    json_option,
    writable_folder,
)
from facelens.cli.output import (
    advance,
    console,
    emit_json,
    print_table,
    progress_bar,
    warn_notes,
)

__all__ = ["command"]


@click.command("detect")
@click.argument("images", nargs=-1, required=True, type=INPUT_PATHS)
@click.option(
    "--draw", "draw_dir", type=click.Path(file_okay=False), help="Write annotated copies here."
)
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context, images: tuple[str, ...], draw_dir: str | None, as_json: bool
) -> None:
    """Find every face in IMAGES (files or folders, walked recursively)."""
    drawings = writable_folder(draw_dir) if draw_dir else None
    lens = get_lens(ctx)
    paths = image_paths(images)
    records: list[dict[str, Any]] = []
    rows = []
    with progress_bar("Detecting", len(paths)) as progress:
        for result in lens.pipeline.detect_many(
            paths, embed=False, keep_images=draw_dir is not None
        ):
            advance(progress)
            record: dict[str, Any] = {
                "source": result.source,
                "faces": [f.to_dict() for f in result.faces],
            }
            if result.error is not None:
                record["error"] = str(result.error)
                console.print(f"[red]skipped[/red] {result.error}")
            warn_notes(record, result.notes)
            records.append(record)
            for index, face in enumerate(result.faces):
                rows.append(
                    [
                        result.source,
                        str(index),
                        str(face.box.as_list()),
                        f"{face.score:.2f}",
                        f"{face.quality.value:.2f}",
                        "; ".join(face.quality.reasons),
                    ]
                )
            if drawings is not None and result.image is not None:
                labels = [f"{i}: q {f.quality.value:.2f}" for i, f in enumerate(result.faces)]
                try:
                    save_drawing(
                        draw_faces(result.image.pixels, result.faces, labels),
                        drawings,
                        result.source,
                    )
                except OSError as error:  # e.g. the disk filled up during the run
                    raise cannot_write(drawings, error) from None
    if as_json:
        emit_json(records)
    else:
        print_table(
            "Faces", ["image", "#", "box [x, y, w, h]", "score", "quality", "reasons"], rows
        )
    if any("error" in r for r in records):
        ctx.exit(1)
