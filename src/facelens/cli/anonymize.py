"""``facelens anonymize``: hide faces in images and videos, with a report and a privacy check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from facelens.apps.video.anonymize import DEFAULT_DETECT_EVERY, DEFAULT_HOLD
from facelens.cli.common import (
    INPUT_PATHS,
    cannot_write,
    friendly_errors,
    get_lens,
    json_option,
    operating_point_options,
    require_gallery,
    writable_folder,
)
from facelens.cli.output import about, console, emit_json, print_table, progress_bar, shown
from facelens.gallery import resolve_gallery_path
from facelens.io.walk import IMAGE_SUFFIXES, walk_files
from facelens.match.calibration import operating_point
from facelens.privacy.methods import METHODS
from facelens.privacy.policy import POSSIBLE_MATCH_FMR, Policy
from facelens.privacy.report import write_reports

__all__ = ["command"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
"""File endings treated as videos (folders are walked for these and for images)."""
CHECK_FAILED_STATUS = 3
"""Exit status when every output was written but a privacy check failed (1: an input
failed or was written only in part)."""


@click.command("anonymize")
@click.argument("inputs", nargs=-1, required=True, type=INPUT_PATHS)
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the anonymized files and their reports (<name>.anonymize.json/.html).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="blur",
    show_default=True,
    help="blur (gaussian), pixelate, box (solid) or ellipse (solid elliptical mask).",
)
@click.option(
    "--keep",
    multiple=True,
    metavar="NAME",
    help="Leave this enrolled, consenting person visible (repeat, or NAME,NAME); "
    "every other face, and every face whose identity is uncertain, is hidden.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="Hide only this enrolled person (repeat, or NAME,NAME), and their possible look-alikes.",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Attack the output with the recognizer and an independent detector (CenterFace).",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Attack each hidden face with SFace, dlib's ResNet and their fusion before writing, "
    "and hide it harder while one still matches it (FMR 1e-2; docs/benchmarks.md#anonymization-verified).",
)
@click.option(
    "--hold",
    type=click.IntRange(min=0),
    default=None,
    help=f"Videos: frames a region stays after its face is lost (default {DEFAULT_HOLD}).",
)
@click.option(
    "--detect-every",
    type=click.IntRange(min=1),
    default=None,
    help="Videos: run the detector on one frame in N (regions are interpolated between; "
    f"default {DEFAULT_DETECT_EVERY}).",
)
@operating_point_options
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out_dir: str,
    method: str,
    keep: tuple[str, ...],
    only: tuple[str, ...],
    check: bool,
    verify: bool,
    hold: int | None,
    detect_every: int | None,
    fmr: float | None,
    threshold: float | None,
    as_json: bool,
) -> None:
    """Hide every face (or all but --keep, or only --only) in INPUTS: images, videos, folders.

    Each face's region grows from the detected box by 0.40 of its height above
    (forehead, hair line), 0.20 of its height below (chin) and 0.20 of its
    width on each side. Videos keep their size, frame rate and audio; between
    detections a region follows its track, and stays a few frames after the
    face is lost. Every input gets a JSON and an HTML report with the privacy
    check.

    Exit status: 0 when every input was anonymized and passed its check; 1 when an
    input failed or was written only in part; 3 when every output was written but
    a privacy check failed (stderr and the report say what failed, and where).
    """
    from facelens.apps.anonymize import Anonymizer

    keep_names, only_names = _names(keep), _names(only)
    if keep_names and only_names:
        raise click.UsageError("--keep and --only cannot be used together")
    if keep_names or only_names:  # they need enrolled people: no gallery file, refused now
        require_gallery(ctx)
    writable_folder(out_dir)  # refused now, before any model loads
    lens = get_lens(ctx)
    calibration = lens.calibration
    possible = operating_point(calibration, fmr=POSSIBLE_MATCH_FMR).threshold
    policy = Policy.make(keep_names, only_names, possible)
    gallery_path = resolve_gallery_path(ctx.obj.get("gallery"))
    use_gallery = policy.needs_identity or gallery_path.exists()
    try:
        anonymizer = Anonymizer(
            lens.pipeline,
            lens.operating_point(fmr, threshold),
            calibration,
            method=method,  # type: ignore[arg-type]
            policy=policy,
            gallery=lens.gallery.template_matrix() if use_gallery else None,
            check=check,
            verify=verify,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    jobs = list(plan_outputs(inputs, Path(out_dir)))
    if not jobs:  # an empty run is not a success that hid nothing
        raise click.ClickException("nothing to read: no image or video in " + ", ".join(inputs))
    records: list[dict[str, Any]] = []
    with progress_bar("Anonymizing", len(jobs)) as progress:
        percent = [-1]  # the whole percentage last drawn
        for done, (source, output) in enumerate(jobs):

            def moved(
                share: float, message: str, done: int = done, name: str = source.name
            ) -> None:
                # drawn at every whole percent (and 10 times a second): the bar, the share and
                # the pass with its frame move with the frames
                now = int(100 * (done + share) / max(1, len(jobs)))
                progress.update(
                    progress.task_ids[0],
                    completed=done + share,
                    description=f"{shown(name)}: {message}",
                    refresh=now != percent[0],
                )
                percent[0] = now

            if source.suffix.lower() in VIDEO_SUFFIXES:
                from facelens.apps.video.anonymize import anonymize_video

                report = anonymize_video(
                    anonymizer,
                    source,
                    output,
                    hold=DEFAULT_HOLD if hold is None else hold,
                    detect_every=DEFAULT_DETECT_EVERY if detect_every is None else detect_every,
                    progress=moved,
                )
            else:
                report = anonymizer.anonymize_image(source, output, progress=moved)
            record = report.to_dict()
            try:
                written = write_reports(
                    record, report.preview, _report_stem(output), report.thumbnails.pictures
                )
            except OSError as error:  # e.g. the disk filled up during the run
                raise cannot_write(_report_stem(output), error) from None
            record["reports"] = [str(p) for p in written]
            records.append(record)
            progress.update(progress.task_ids[0], completed=done + 1)
            if report.error is not None:
                console.print(f"[red]failed[/red] {about(source, report.error)}")
            elif report.partial:
                console.print(
                    f"[yellow]partial[/yellow] {source}: only part of it is in {output} "
                    f"({'; '.join(report.problems)})"
                )
            if report.error is None and report.check_failed:
                console.print(
                    f"[red]privacy check failed[/red] {source} (written to {output}; "
                    f"review {written[1]}):"
                )
                for failure in record["failures"]:
                    console.print(f"  - {failure['what']}: frames {_runs(failure['frames'])}")
    if as_json:
        emit_json(records)
    else:
        _print_summary(records)
    if any("error" in r or r["partial"] for r in records):
        ctx.exit(1)
    if any(r.get("check_failed") for r in records):
        ctx.exit(CHECK_FAILED_STATUS)


def plan_outputs(inputs: tuple[str, ...], out_dir: Path) -> Iterator[tuple[Path, Path]]:
    """``(source, output)`` per file: a file goes to ``out_dir/<name>``, a folder's files keep
    their path relative to the folder; an output that would be an input (``-o`` the input's
    own folder) or another output is numbered instead (``name-1.jpg``), so no original is
    ever written over. A missing path, or a folder that cannot be listed, is kept (its
    report says so); a folder with nothing to read is named on stderr."""
    pairs: list[tuple[Path, Path]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files = walk_files(path, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not files:
                click.echo(f"{raw}: no image or video in this folder", err=True)
            pairs.extend((p, out_dir / p.relative_to(path)) for p in files)
        else:
            pairs.append((path, out_dir / path.name))
    taken = {source.resolve() for source, _ in pairs}  # the inputs are never outputs
    for source, output in pairs:
        if source.suffix.lower() in VIDEO_SUFFIXES and source.suffix.lower() != ".webm":
            output = output.with_suffix(".mp4")
        yield source, _unique(output, taken)


def _unique(output: Path, taken: set[Path]) -> Path:
    """``output``, or ``<stem>-N<suffix>`` beside it when that is taken (an input or an
    earlier output); the path chosen is taken from then on."""
    candidate, counter = output, 1
    while candidate.resolve() in taken:
        candidate = output.with_name(f"{output.stem}-{counter}{output.suffix}")
        counter += 1
    taken.add(candidate.resolve())
    return candidate


def _report_stem(output: Path) -> Path:
    return output.with_name(output.name + ".anonymize")


def _runs(runs: list[list[int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "-"


def _names(values: tuple[str, ...]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _print_summary(records: list[dict[str, Any]]) -> None:
    rows = []
    for r in records:
        name = Path(r["source"]).name
        if "error" in r:
            rows.append([name, "[red]error[/red]", "", "", "", r["error"]])
            continue
        check = r["check"]
        verdict = (
            "-"
            if check is None
            else ("[green]passed[/green]" if check["passed"] else "[red]FAILED[/red]")
        )
        tracks = "" if r["tracks_anonymized"] is None else str(r["tracks_anonymized"])
        rows.append(
            [
                name,
                str(r["faces_anonymized"]),
                tracks,
                f"{r['frames_touched']}/{r['frames']}",
                verdict,
                ", ".join(
                    (["[yellow]partial[/yellow]"] if r["partial"] else [])
                    + ([f"{len(r['review'])} to review"] if r["review"] else [])
                ),
            ]
        )
    print_table(
        "Anonymization",
        ["input", "faces hidden", "tracks hidden", "frames touched", "privacy check", "notes"],
        rows,
    )
    for r in records:
        if "reports" in r:
            console.print(f"report: {r['reports'][1]}")
