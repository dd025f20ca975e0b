"""``facelens analyze``: apparent expression, age and gender of every face of each image;
``facelens analyze-video``: expression over time per tracked face."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from facelens.analysis.analyzer import (
    EXPRESSION_MODELS,
    AttributeAnalyzer,
)
from facelens.analysis.attributes import AnalyzedFace
from facelens.analysis.smoothing import DEFAULT_WINDOW_SECONDS
from facelens.analysis.tight import attribute_faces
from facelens.apps.draw import draw_faces, save_drawing
from facelens.apps.video.charts import expression_timeline_png
from facelens.apps.video.expressions import analyze_video_expressions
from facelens.cli.common import (
    INPUT_PATHS,
    FiniteFloat,
    cannot_write,
    check_time_window,
    friendly_errors,
    get_lens,
    image_paths,
    json_option,
    writable_folder,
)
from facelens.cli.output import (
    about,
    advance,
    console,
    emit_json,
    print_table,
    progress_bar,
    warn_notes,
)
from facelens.errors import FaceLensError
from facelens.pipeline.faces import FacePipeline

__all__ = ["command", "video_command"]

expression_model_option = click.option(
    "--expression-model",
    type=click.Choice(EXPRESSION_MODELS),
    default=None,
    help="Expression model (default: facelens's CNN, in int8 where onnxruntime runs the "
    "models, in float32/bfloat16 on OpenVINO; see docs/models.md#attributes).",
)


@click.command("analyze")
@click.argument("images", nargs=-1, required=True, type=INPUT_PATHS)
@click.option(
    "--draw", "draw_dir", type=click.Path(file_okay=False), help="Write annotated copies here."
)
@click.option(
    "--no-age-gender",
    is_flag=True,
    help="Expression only (skips the larger age/gender model).",
)
@click.option(
    "--cropped",
    is_flag=True,
    help="Each image is one face crop: analyse the whole image as the face, no detection. "
    "(Without it, a small image where no face is found is taken as a crop.)",
)
@expression_model_option
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    images: tuple[str, ...],
    draw_dir: str | None,
    no_age_gender: bool,
    cropped: bool,
    expression_model: str | None,
    as_json: bool,
) -> None:
    """Expression (7 classes with probabilities), apparent age and gender of every face in
    IMAGES (files or folders, walked recursively).

    These are apparent attributes read by models trained on FER2013 and public
    age/gender sets: not identity, not how a person feels or identifies; see
    docs/models.md for their limits and biases. An image that is itself a tight face
    crop (a small image with no face found, or any image with --cropped) is analysed
    as one face, marked "cropped": true in the JSON.
    """
    drawings = writable_folder(draw_dir) if draw_dir else None
    lens = get_lens(ctx)
    attributes = AttributeAnalyzer(
        age_gender=not no_age_gender,
        threads=lens.pipeline.threads,
        expression_model=expression_model,
    )
    paths = image_paths(images)
    records: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    with progress_bar("Analyzing", len(paths)) as progress:
        for result in lens.pipeline.detect_many(paths, embed=False, keep_images=True):
            advance(progress)
            record: dict[str, Any] = {"source": result.source, "faces": []}
            records.append(record)
            warn_notes(record, result.notes)
            if result.error is not None or result.image is None:
                record["error"] = str(result.error)
                console.print(f"[red]skipped[/red] {result.error}")
                continue
            try:
                faces, whole = attribute_faces(
                    lens.pipeline, result.image, result.faces, cropped=cropped
                )
                found = attributes.analyze(result.image.pixels, faces)
            except FaceLensError as error:  # e.g. a model file that fails its sha256 check
                record["error"] = str(error)
                console.print(f"[red]skipped[/red] {result.source}: {error}")
                continue
            record["cropped"] = whole
            analyzed = [AnalyzedFace(f, a, whole) for f, a in zip(faces, found, strict=True)]
            record["faces"] = [a.to_dict() for a in analyzed]
            rows.extend(_table_row(result.source, i, a) for i, a in enumerate(analyzed))
            if drawings is not None:
                labels = [f"{i}: {a.attributes.summary()}" for i, a in enumerate(analyzed)]
                try:
                    save_drawing(
                        draw_faces(result.image.pixels, faces, labels), drawings, result.source
                    )
                except OSError as error:  # e.g. the disk filled up during the run
                    raise cannot_write(drawings, error) from None
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
        f"{index} (whole image)" if analyzed.cropped else str(index),
        found.expression,
        f"{found.expression_scores[found.expression]:.2f}",
        "-" if found.age is None else f"{found.age:.0f}",
        found.gender or "-",
        "-" if found.male_score is None else f"{found.male_score:.2f}",
    ]


@click.command("analyze-video")
@click.argument("videos", nargs=-1, required=True)
@click.option(
    "--window",
    type=FiniteFloat(min=0),
    default=DEFAULT_WINDOW_SECONDS,
    show_default=True,
    help="Smoothing window along each track, seconds (0: per-frame labels).",
)
@click.option("--every", type=click.IntRange(min=1), default=1, help="Process every Nth frame.")
@click.option(
    "--fps",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Process at most this many frames/s.",
)
@click.option("--start", type=FiniteFloat(min=0), default=None, help="Start time, seconds.")
@click.option(
    "--end",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="End time, seconds (after --start).",
)
@click.option("--frames", "with_frames", is_flag=True, help="JSON: every frame's scores too.")
@click.option(
    "--png",
    "png_dir",
    type=click.Path(file_okay=False),
    help="Write a chart of expression over time per video here.",
)
@expression_model_option
@json_option
@click.pass_context
@friendly_errors
def video_command(
    ctx: click.Context,
    videos: tuple[str, ...],
    window: float,
    every: int,
    fps: float | None,
    start: float | None,
    end: float | None,
    with_frames: bool,
    png_dir: str | None,
    expression_model: str | None,
    as_json: bool,
) -> None:
    """Expression over time of every tracked face in VIDEOS (files, image folders or
    globs, webcam indexes, URLs): per-frame probabilities smoothed in a centred window
    along each track, cut into segments ("happy from 1.2 s to 3.4 s"). Exit status 1 when a
    video could not be read, or only in part (a truncated file: what was read is reported)."""
    check_time_window(start, end)
    charts = writable_folder(png_dir) if png_dir else None
    lens = get_lens(ctx)
    faces = FacePipeline(
        lens.pipeline.detector,
        lens.pipeline.embedder,
        max_upscale=1.0,
        coarse_first=False,  # a video's small faces must not come and go with the large
        threads=lens.pipeline.threads,
    )
    attributes = AttributeAnalyzer(
        age_gender=False, threads=lens.pipeline.threads, expression_model=expression_model
    )
    records: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    for video in videos:
        try:
            with progress_bar(f"Analyzing {Path(video).name}", None) as progress:
                result = analyze_video_expressions(
                    _video_source(video),
                    faces,
                    attributes,
                    window=window,
                    every=every,
                    fps=fps,
                    start=start,
                    end=end,
                    progress=lambda n: advance(progress, n),
                )
        except FaceLensError as error:
            records.append({"source": video, "error": str(error)})
            console.print(f"[red]skipped[/red] {about(video, error)}")
            continue
        record = result.to_dict(frames=with_frames)
        if charts is not None:
            chart = charts / f"{Path(video).stem}.png"
            try:
                record["chart"] = str(expression_timeline_png(result, chart))
            except OSError as error:
                raise cannot_write(chart, error) from None
        records.append(record)
        for problem in result.problems:
            console.print(f"[yellow]warning[/yellow] {result.source}: {problem}")
        for track in result.tracks:
            segments = ", ".join(f"{s.label} {s.start:.1f}-{s.end:.1f}s" for s in track.segments())
            rows.append([result.source, str(track.track_id), segments])
        if not result.tracks:
            read = result.frames_processed
            rows.append(
                [result.source, "-", f"no face in {read} frames" if read else "no frame read"]
            )
    if as_json:
        emit_json(records)
    else:
        print_table("Expression over time", ["video", "track", "segments"], rows)
    if any("error" in r or r.get("complete") is False for r in records):
        ctx.exit(1)  # a video that could not be read, or read only in part


def _video_source(text: str) -> str | int:
    """A webcam index stays a number; anything else is a path, glob or URL."""
    return int(text) if text.isdigit() else text
