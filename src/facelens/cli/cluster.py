"""``facelens cluster``: group the unknown faces of photos into people, and correct the groups.

``facelens cluster SOURCE...`` is short for ``facelens cluster run SOURCE...``
(use the long form for a folder named like a subcommand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from facelens.cli.common import (
    INPUT_PATHS,
    friendly_errors,
    get_lens,
    image_paths,
    json_option,
    no_library,
    operating_point_options,
)
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.cluster.clusterer import FaceClusters
from facelens.cluster.ingest import PhotoOutcome
from facelens.cluster.library_store import library_exists, library_location
from facelens.cluster.resemblance import person_threshold
from facelens.cluster.sheet import write_contact_sheets
from facelens.types import USABLE_QUALITY

__all__ = ["command"]


class _RunByDefault(click.Group):
    """A group whose first argument, when it is not a subcommand, starts ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


index_option = click.option(
    "--index",
    "index_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Library file (default: <gallery>.library.db beside the gallery, $FACELENS_LIBRARY, or "
    "a PostgreSQL gallery's database; the one `facelens ingest` and the service use).",
)


@click.group("cluster", cls=_RunByDefault)
def command() -> None:
    """Group unknown faces into people: `facelens cluster SOURCE...`, then correct and name.

    Faces of one photo are never grouped together; new photos join the
    groups already there; corrections (merge, split, move, reject, name) are
    kept and honoured by every later run; naming a group enrolls it in the
    gallery.
    """


def _clusters(ctx: click.Context, index_path: str | None, *, create: bool = False) -> FaceClusters:
    """The clusters of this invocation: the lens's pipeline and gallery, the index beside it.

    Only ``run`` with photos (``create``) makes the library; the commands that list or correct groups
    refuse a missing one in one line (:func:`no_library`) and make nothing.
    """
    if not create:
        location = library_location(ctx.ensure_object(dict).get("gallery"), index_path)
        if not library_exists(location):
            raise no_library(location)
    clusters = get_lens(ctx).clusters(Path(index_path) if index_path else None)
    ctx.call_on_close(clusters.close)
    return clusters


@command.command("run")
@click.argument("sources", nargs=-1, type=INPUT_PATHS)
@index_option
@operating_point_options
@click.option(
    "--rebuild",
    is_flag=True,
    help="Cluster every face again (corrections are kept), not only the new ones.",
)
@click.option(
    "--min-quality",
    type=float,
    default=USABLE_QUALITY,
    show_default=True,
    help="Faces below this quality (0-1) are not indexed.",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(file_okay=False),
    help="Write contact sheets (index.html and one page per group) here.",
)
@click.option(
    "--min-faces",
    type=int,
    default=2,
    show_default=True,
    help="Smallest group shown in the table and the contact sheets.",
)
@json_option
@click.pass_context
@friendly_errors
def run_command(
    ctx: click.Context,
    sources: tuple[str, ...],
    index_path: str | None,
    fmr: float | None,
    threshold: float | None,
    rebuild: bool,
    min_quality: float,
    html_dir: str | None,
    min_faces: int,
    as_json: bool,
) -> None:
    """Index the faces of SOURCES (files or folders) and group them.

    Photos read before are skipped; their faces keep their groups. Two groups
    merge when the mean score between their faces reaches the threshold of
    --fmr (default 1e-5 per comparison, or the last run's).
    """
    if not sources and not rebuild:
        raise click.UsageError("give photos or folders to cluster (or --rebuild)")
    clusters = _clusters(ctx, index_path, create=bool(sources))  # --rebuild alone: no new one
    paths = image_paths(sources) if sources else []
    with progress_bar("Reading photos", len(paths)) as progress:

        def step(outcome: PhotoOutcome) -> None:
            advance(progress)
            if outcome.status == "error":
                console.print(f"[red]skipped[/red] {outcome.error}")

        report = clusters.run(
            paths,
            fmr=fmr,
            threshold=threshold,
            rebuild=rebuild,
            min_quality=min_quality,
            on_item=step,
        )
    sheet = write_contact_sheets(clusters, Path(html_dir), min_faces) if html_dir else None
    data = report.to_dict()
    data["index"] = str(clusters.store.label)
    data["stats"] = clusters.store.stats()
    data["threshold"] = round(report.point.threshold, 4)
    if sheet is not None:
        data["html"] = str(sheet)
    if as_json:
        emit_json(data)
    else:
        _print_groups(data["groups"], min_faces)
        run = data["run"]
        stats = data["stats"]
        console.print(
            f"{stats['photos']} photos, {stats['faces']} faces in {stats['groups']} groups "
            f"({run['faces_placed']} faces placed, {run['groups_created']} new groups); "
            f"threshold {report.point.threshold:.3f} at FMR {report.point.fmr:g}; "
            f"index {clusters.store.label}"
        )
        if sheet is not None:
            console.print(f"contact sheets: {sheet}")
    if any(p.status == "error" for p in report.photos):
        ctx.exit(1)


@command.command("show")
@click.argument("group_id", type=int, required=False)
@index_option
@click.option("--min-faces", type=int, default=2, show_default=True, help="Smallest group listed.")
@click.option("--corrections", is_flag=True, help="List the corrections made so far.")
@json_option
@click.pass_context
@friendly_errors
def show_command(
    ctx: click.Context,
    group_id: int | None,
    index_path: str | None,
    min_faces: int,
    corrections: bool,
    as_json: bool,
) -> None:
    """List the groups, or the faces of GROUP_ID."""
    clusters = _clusters(ctx, index_path)
    if corrections:
        log = clusters.store.corrections()
        if as_json:
            emit_json(log)
        else:
            rows = [[str(c["id"]), c["at"], c["action"], str(c["detail"])] for c in log]
            print_table("Corrections", ["#", "when", "action", "detail"], rows)
        return
    groups = clusters.groups()
    if group_id is not None:
        group = clusters.store.group(group_id)
        fit = clusters.group_cohesion(group_id)
        faces = [
            f | {"fit": round(fit[f["id"]], 4)}
            for g in groups
            if g["id"] == group.id
            for f in g["faces"]
        ]
        if as_json:
            emit_json({"id": group.id, "name": group.name, "size": group.faces, "faces": faces})
        else:
            rows = [
                [
                    str(f["id"]),
                    Path(f["source"]).name,
                    f"{f['fit']:.3f}",
                    f"{f['quality']:.2f}",
                    f["enrolled_as"] or "",
                ]
                for f in faces
            ]
            print_table(
                f"Group {group.id}" + (f" ({group.name})" if group.name else ""),
                ["face", "photo", "fit", "quality", "enrolled as"],
                rows,
            )
        return
    if as_json:
        emit_json(
            {"index": str(clusters.store.label), "stats": clusters.store.stats(), "groups": groups}
        )
    else:
        _print_groups(groups, min_faces)


@command.command("merge")
@click.argument("group_ids", nargs=-1, type=int, required=True)
@index_option
@json_option
@click.pass_context
@friendly_errors
def merge_command(
    ctx: click.Context, group_ids: tuple[int, ...], index_path: str | None, as_json: bool
) -> None:
    """GROUP_IDS are one person: merge them (kept by every later run)."""
    result = _clusters(ctx, index_path).merge(list(group_ids))
    _report(result, as_json, f"merged into group {result['group']}")


@command.command("split")
@click.argument("group_id", type=int)
@click.argument("face_ids", nargs=-1, type=int, required=True)
@index_option
@json_option
@click.pass_context
@friendly_errors
def split_command(
    ctx: click.Context,
    group_id: int,
    face_ids: tuple[int, ...],
    index_path: str | None,
    as_json: bool,
) -> None:
    """FACE_IDS of GROUP_ID are another person: they become a new group."""
    result = _clusters(ctx, index_path).split(group_id, list(face_ids))
    _report(
        result,
        as_json,
        f"faces {', '.join(map(str, face_ids))} are now group {result['new_group']}",
    )


@command.command("move")
@click.argument("face_ids", nargs=-1, type=int, required=True)
@click.option("--to", "group_id", type=int, required=True, help="The group the faces belong to.")
@index_option
@json_option
@click.pass_context
@friendly_errors
def move_command(
    ctx: click.Context,
    face_ids: tuple[int, ...],
    group_id: int,
    index_path: str | None,
    as_json: bool,
) -> None:
    """FACE_IDS belong to group --to (and not to the group they are in)."""
    result = _clusters(ctx, index_path).move(list(face_ids), group_id)
    _report(result, as_json, f"faces {', '.join(map(str, face_ids))} moved to group {group_id}")


@command.command("reject")
@click.argument("face_ids", nargs=-1, type=int, required=True)
@index_option
@json_option
@click.pass_context
@friendly_errors
def reject_command(
    ctx: click.Context, face_ids: tuple[int, ...], index_path: str | None, as_json: bool
) -> None:
    """Not this person: FACE_IDS leave their group for good and are grouped again."""
    result = _clusters(ctx, index_path).reject(list(face_ids))
    placed = ", ".join(f"face {f} -> group {g}" for f, g in result["faces"].items())
    _report(result, as_json, placed)


@command.command("name")
@click.argument("group_id", type=int)
@click.argument("name")
@click.option(
    "--force",
    is_flag=True,
    help="Name the group even when its faces look like another enrolled person.",
)
@index_option
@json_option
@click.pass_context
@friendly_errors
def name_command(
    ctx: click.Context,
    group_id: int,
    name: str,
    force: bool,
    index_path: str | None,
    as_json: bool,
) -> None:
    """Name GROUP_ID: it is enrolled in the gallery as NAME (renamed if it had a name).

    A group whose faces are identified as another enrolled person is refused, as
    `enroll` refuses such a photo, unless --force.
    """
    clusters = _clusters(ctx, index_path)
    if not force:
        lens = get_lens(ctx)
        point, calibration = lens.operating_point(), lens.calibration
        clusters.refuse_another_persons_group(
            group_id, name, lambda k: person_threshold(point, calibration, k)
        )
    result = clusters.name(group_id, name)
    _report(
        result,
        as_json,
        f"group {group_id} is {result['name']}: {result['gallery']['enrolled']} templates enrolled",
    )


@command.command("forget")
@click.argument("group_id", type=int)
@index_option
@json_option
@click.pass_context
@friendly_errors
def forget_command(
    ctx: click.Context, group_id: int, index_path: str | None, as_json: bool
) -> None:
    """Erase GROUP_ID's faces (templates, crops, corrections) from the index for good.

    The photos stay recorded, so later runs do not index those faces again. A
    gallery person made by naming the group stays: erase it with
    `facelens people remove NAME`.
    """
    result = _clusters(ctx, index_path).forget(group_id)
    message = f"group {group_id}: {result['faces_erased']} faces erased from the index"
    if result["gallery_person"]:
        message += (
            f"; {result['gallery_person']!r} is still in the gallery (facelens people remove)"
        )
    _report(result, as_json, message)


@command.command("html")
@click.argument("out_dir", type=click.Path(file_okay=False))
@index_option
@click.option("--min-faces", type=int, default=2, show_default=True, help="Smallest group shown.")
@click.pass_context
@friendly_errors
def html_command(ctx: click.Context, out_dir: str, index_path: str | None, min_faces: int) -> None:
    """Write contact sheets of the groups into OUT_DIR (index.html, one page per group)."""
    sheet = write_contact_sheets(_clusters(ctx, index_path), Path(out_dir), min_faces)
    console.print(f"contact sheets: {sheet}")


def _report(result: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        emit_json(result)
        return
    console.print(message)
    gallery = result.get("gallery") or {}
    if gallery.get("enrolled") or gallery.get("removed"):
        console.print(
            f"gallery: {gallery.get('enrolled', 0)} templates enrolled, "
            f"{gallery.get('removed', 0)} removed"
        )


def _print_groups(groups: list[dict[str, Any]], min_faces: int) -> None:
    shown = [g for g in groups if g["size"] >= min_faces]
    rows = [
        [
            str(g["id"]),
            g["name"] or "",
            str(g["size"]),
            ", ".join(sorted({Path(f["source"]).name for f in g["faces"]})[:4])
            + (" ..." if len({f["source"] for f in g["faces"]}) > 4 else ""),
        ]
        for g in shown
    ]
    hidden = len(groups) - len(shown)
    title = "Face groups" + (
        f" ({hidden} with fewer than {min_faces} faces not listed)" if hidden else ""
    )
    print_table(title, ["group", "name", "faces", "photos"], rows)
