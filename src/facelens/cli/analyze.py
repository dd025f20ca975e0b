"""``facelens analyze``: apparent expression, age and gender of every face of each image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from facelens.analysis.analyzer import AttributeAnalyzer
from facelens.analysis.attributes import AnalyzedFace
from facelens.apps.draw import draw_faces, save_drawing
from facelens.cli.common import friendly_errors, get_lens, json_option
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.errors import FaceLensError
from facelens.io.walk import expand_image_paths


@click.command("analyze")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--draw", "draw_dir", type=click.Path(file_okay=False), help="Write annotated copies here."
)
@click.option(
    "--no-age-gender",
    is_flag=True,
    help="Expression only (skips the larger age/gender model).",
)
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    images: tuple[str, ...],
    draw_dir: str | None,
    no_age_gender: bool,
    as_json: bool,
) -> None:
    """Expression (7 classes with probabilities), apparent age and gender of every face in
    IMAGES (files or folders, walked recursively).

    These are apparent attributes read by models trained on FER2013 and public
    age/gender sets: not identity, not how a person feels or identifies; see
    docs/models.md for their limits and biases.
    """
    lens = get_lens(ctx)
    attributes = AttributeAnalyzer(age_gender=not no_age_gender, threads=lens.analyzer.threads)
    paths = expand_image_paths(images)
    records: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    with progress_bar("Analyzing", len(paths)) as progress:
        for result in lens.analyzer.analyze_many(paths, embed=False, keep_images=True):
            advance(progress)
            record: dict[str, Any] = {"source": result.source, "faces": []}
            records.append(record)
            if result.error is not None or result.image is None:
                record["error"] = str(result.error)
                console.print(f"[red]skipped[/red] {result.error}")
                continue
            try:
                found = attributes.analyze(result.image.pixels, result.faces)
            except FaceLensError as error:  # e.g. a model file that fails its sha256 check
                record["error"] = str(error)
                console.print(f"[red]skipped[/red] {result.source}: {error}")
                continue
            analyzed = [AnalyzedFace(f, a) for f, a in zip(result.faces, found, strict=True)]
            record["faces"] = [a.to_dict() for a in analyzed]
            rows.extend(_table_row(result.source, i, a) for i, a in enumerate(analyzed))
            if draw_dir:
                labels = [f"{i}: {a.attributes.summary()}" for i, a in enumerate(analyzed)]
                save_drawing(
                    draw_faces(result.image.pixels, result.faces, labels),
                    Path(draw_dir),
                    result.source,
                )
    if as_json:
        emit_json(records)
    else:
        print_table(
            "Apparent attributes",
            ["image", "#", "expression", "p", "age", "gender", "male score"],
            rows,
        )
    if any("error" in r for r in records):
        ctx.exit(1)


def _table_row(source: str, index: int, analyzed: AnalyzedFace) -> list[str]:
    found = analyzed.attributes
    return [
        source,
        str(index),
        found.expression,
        f"{found.expression_scores[found.expression]:.2f}",
        "-" if found.age is None else f"{found.age:.0f}",
        found.gender or "-",
        "-" if found.male_score is None else f"{found.male_score:.2f}",
    ]
