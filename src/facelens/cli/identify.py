"""``facelens identify``: who is in each photo?"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from facelens.apps.draw import KNOWN, UNKNOWN, draw_faces, save_drawing
from facelens.cli.common import (
    INPUT_PATHS,
    friendly_errors,
    get_lens,
    image_paths,
    json_option,
    operating_point_options,
    require_gallery,
)
from facelens.cli.output import (
    advance,
    console,
    emit_json,
    print_table,
    progress_bar,
    warn_notes,
)
from facelens.pipeline.faces import ImageFaces
from facelens.types import Match

__all__ = ["command", "print_identifications"]


@click.command("identify")
@click.argument("paths", nargs=-1, required=True, type=INPUT_PATHS)
@operating_point_options
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Candidates listed per face.",
)
@click.option(
    "--draw", "draw_dir", type=click.Path(file_okay=False), help="Write annotated copies here."
)
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmr: float | None,
    threshold: float | None,
    top_k: int,
    draw_dir: str | None,
    as_json: bool,
) -> None:
    """Identify every face in PATHS (files or folders, walked recursively)."""
    lens = get_lens(ctx)
    lens.operating_point(fmr, threshold)  # an impossible threshold or no calibration: refused now
    require_gallery(ctx)  # no gallery file: refused, none made (a typo in --gallery)
    files = image_paths(paths)
    records = identify_files(
        lens, files, fmr, threshold, top_k, Path(draw_dir) if draw_dir else None
    )
    faces = [face for record in records for face in record["faces"]]
    if faces and all(face["score"] is None for face in faces):  # nobody to compare with
        click.echo(
            "the gallery holds nobody yet: every face is unknown "
            "(enroll people first: facelens enroll NAME PHOTO...)",
            err=True,
        )
    if as_json:
        emit_json(records)
    else:
        print_identifications(records)
    if any("error" in r for r in records):
        ctx.exit(1)


def identify_files(
    lens: Any,
    files: list[Path],
    fmr: float | None,
    threshold: float | None,
    top_k: int,
    draw_dir: Path | None,
) -> list[dict[str, Any]]:
    """Identify faces in ``files``; one JSON-ready record per image (errors included)."""
    records = []
    with progress_bar("Identifying", len(files)) as progress:
        for result, matches in lens.identify_many(
            files, fmr=fmr, threshold=threshold, top_k=top_k, keep_images=draw_dir is not None
        ):
            advance(progress)
            records.append(_record(result, matches))
            if result.error is not None:
                console.print(f"[red]skipped[/red] {result.error}")
            if draw_dir and result.image is not None:
                _draw(result, matches, draw_dir)
    return records


def _record(result: ImageFaces, matches: list[Match]) -> dict[str, Any]:
    record: dict[str, Any] = {"source": result.source, "faces": [m.to_dict() for m in matches]}
    if result.error is not None:
        record["error"] = str(result.error)
    warn_notes(record, result.notes)
    return record


def _draw(result: ImageFaces, matches: list[Match], draw_dir: Path) -> None:
    assert result.image is not None
    labels = [_label(m) for m in matches]
    colours = [KNOWN if m.identity else UNKNOWN for m in matches]
    drawing = draw_faces(result.image.pixels, [m.face for m in matches], labels, colours)
    save_drawing(drawing, draw_dir, result.source)


def _label(match: Match) -> str:
    """``name 0.83``, ``unknown 0.41``, or ``unknown`` where nobody was compared (empty gallery)."""
    name = match.identity or "unknown"
    return name if math.isnan(match.score) else f"{name} {match.score:.2f}"


def print_identifications(records: list[dict[str, Any]]) -> None:
    """A table of every face (file name, box, identity, score, best candidate) and the operating point."""
    rows = []
    operating_point = ""
    for record in records:
        name = (
            Path(record["source"]).name
            if not record["source"].startswith("<")
            else record["source"]
        )
        if "error" in record:
            rows.append([name, "-", "[red]error[/red]", "", record["error"]])
        elif not record["faces"]:
            rows.append([name, "-", "no face", "", ""])
        for face in record["faces"]:
            best = face["candidates"][0] if face["candidates"] else None
            rows.append(
                [
                    name,
                    " ".join(f"{v:.0f}" for v in face["box"]),
                    face["identity"] or "[yellow]unknown[/yellow]",
                    "-" if face["score"] is None else f"{face['score']:.3f}",
                    f"{best['name']} ({best['score']:.3f})" if best else "-",
                ]
            )
            operating_point = f"threshold {face['threshold']:.3f} = false-match rate {face['fmr']:g} per comparison"
    print_table(
        "Identification", ["image", "box x y w h", "identity", "score", "best candidate"], rows
    )
    if operating_point:
        console.print(operating_point)
