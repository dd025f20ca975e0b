"""``facelens ingest``: a large collection of photos and videos into the library (beside the
gallery; the one ``facelens cluster``, ``search`` and the service's ``/api/library`` use),
a separate scan index (``--scan FILE``), or the gallery."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from facelens.cli.common import FiniteFloat, friendly_errors, get_lens, json_option
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.errors import MultipleFacesError
from facelens.gallery.protection import resolve_gallery_key
from facelens.ingest.process import ItemResult, ProcessOptions
from facelens.ingest.run import DEFAULT_BATCH_SIZE, Executor, LocalExecutor, Screen, run_ingest
from facelens.ingest.scan_index import ScanIndex
from facelens.ingest.sources import expand_sources
from facelens.models import registry
from facelens.pipeline.face_choice import FaceChoice

__all__ = ["command", "scan_option", "stored_scan_model"]

DEFAULT_SCAN = "facelens-scan.db"
F = TypeVar("F", bound=Callable[..., Any])


def scan_option(func: F) -> F:
    """``--scan PATH``: a separate scan index file, shared by ``ingest`` and ``search``
    (default: none, the library beside the gallery)."""
    return click.option(
        "--scan",
        "scan_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="A separate scan index file instead of the library beside the gallery "
        "(<gallery>.library.db, $FACELENS_LIBRARY, or a PostgreSQL gallery's database).",
    )(func)


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True)
@scan_option
@click.option(
    "--into-gallery",
    is_flag=True,
    help="Enroll each photo's one face under its folder's name, instead of scanning. "
    f"The --scan file (default {DEFAULT_SCAN}) then only keeps each item's state.",
)
@click.option(
    "--face",
    type=click.Choice(["only", "largest"]),
    default="only",
    show_default=True,
    help="With --into-gallery: which face of each photo to enroll, its only usable face "
    "(a photo with several is refused and listed) or the largest usable face.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --into-gallery: save a face even when another enrolled person matches it "
    "better than its folder's name (as `enroll --force`).",
)
@click.option(
    "--video-fps",
    type=FiniteFloat(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Video frames searched per second.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Threads (local) or Ray actors; default: every core.",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Run on Ray: `--ray` (after the sources) or `--ray local` starts a local Ray "
    "instance; `--ray ADDRESS` (auto, ray://host:10001) joins that cluster.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Process at most this many pending items.",
)
@click.option("--retry-failed", is_flag=True, help="Try the items that failed before again.")
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    sources: tuple[str, ...],
    scan_path: str | None,
    into_gallery: bool,
    face: str,
    force: bool,
    video_fps: float,
    batch_size: int,
    workers: int | None,
    ray_address: str | None,
    limit: int | None,
    retry_failed: bool,
    as_json: bool,
) -> None:
    """Find every face in SOURCES (files, folders, @file-lists; photos and videos).

    Into the library beside the gallery by default (then grouped, as `facelens
    cluster` does). Resumable: the state of every item is kept, so an
    interrupted run continues where it stopped when run again.
    """
    obj = ctx.ensure_object(dict)
    missing = [s for s in sources if not s.startswith("@") and not Path(s).expanduser().exists()]
    if missing:  # a typo, refused before it is registered as an item that fails forever
        raise click.ClickException(f"no such file or folder: {', '.join(missing)}")
    if face != "only" and not into_gallery:
        raise click.UsageError("--face picks the face to enroll: it needs --into-gallery")
    if force and not into_gallery:
        raise click.UsageError("--force saves a face to enroll: it needs --into-gallery")
    if scan_path is None and not into_gallery:
        _into_library(
            ctx, sources, video_fps, batch_size, workers, ray_address, limit, retry_failed, as_json
        )
        return
    scan_path = scan_path or DEFAULT_SCAN
    gallery = get_lens(ctx).gallery if into_gallery else None
    screen = (
        Screen(get_lens(ctx).operating_point().threshold, force=force) if into_gallery else None
    )
    embedder = (
        get_lens(ctx).pipeline.embedder_id
        if into_gallery
        else obj.get("embedder") or stored_scan_model(Path(scan_path)) or registry.DEFAULT_EMBEDDER
    )
    options = ProcessOptions(
        embedder=embedder,
        detector=registry.DEFAULT_DETECTOR,
        target="gallery" if into_gallery else "scan",
        video_fps=video_fps,
        threads=workers,
        max_side=obj.get("max_side"),
        face=FaceChoice.parse(face),
    )
    state = ScanIndex(scan_path, embedder, cipher=resolve_gallery_key(obj.get("key_file")))
    ctx.call_on_close(state.close)
    if retry_failed:
        state.retry_failed()
    items = expand_sources(sources)
    executor: Executor
    if ray_address is not None:
        from facelens.ingest.ray_runner import RayExecutor

        executor = RayExecutor(
            options, None if ray_address == "local" else ray_address, workers or 2
        )
    else:
        executor = LocalExecutor(options)
    registered = state.add_items(items)
    before = state.counts()
    if before.done or before.failed:
        console.print(f"{before.done + before.failed} items already processed; continuing")
    total = before.pending if limit is None else min(limit, before.pending)
    group_photos: list[str] = []  # photos refused for holding several usable faces
    try:
        with progress_bar("Ingesting", total) as progress:

            def step(result: ItemResult) -> None:
                if result.error_code == MultipleFacesError.code:
                    group_photos.append(result.source)
                advance(progress)

            summary = run_ingest(
                state,
                items,
                executor,
                gallery=gallery,
                screen=screen,
                batch_size=batch_size,
                limit=limit,
                on_result=step,
            )
    finally:
        executor.close()
    summary.registered = registered
    failures = state.failures()
    if as_json:
        emit_json(
            {
                **summary.to_dict(),
                "scan": scan_path,
                "failures": [{"source": s, "error": e} for s, e in failures],
            }
        )
    else:
        if failures:
            print_table("Failed items", ["item", "reason"], [[s, e] for s, e in failures[-20:]])
        console.print(
            f"{summary.processed} items processed ({summary.faces} faces, {summary.failed} failed) "
            f"in {summary.seconds:.1f} s, {summary.items_per_second:.2f} items/s; "
            f"{summary.counts.done} done, {summary.counts.pending} pending, "
            f"{summary.counts.failed} failed in {scan_path}"
        )
    if group_photos:
        click.echo(
            f"{len(group_photos)} photo(s) hold several usable faces and were not enrolled; "
            "--face largest enrolls the largest face of each",
            err=True,
        )
    if summary.failed:
        ctx.exit(1)


def _executor(options: ProcessOptions, ray_address: str | None, workers: int | None) -> Executor:
    from facelens.ingest.ray_runner import RayExecutor

    return RayExecutor(options, None if ray_address == "local" else ray_address, workers or 2)


def _into_library(
    ctx: click.Context,
    sources: tuple[str, ...],
    video_fps: float,
    batch_size: int,
    workers: int | None,
    ray_address: str | None,
    limit: int | None,
    retry_failed: bool,
    as_json: bool,
) -> None:
    """``facelens ingest SOURCES`` into the library, then group the new faces."""
    library = get_lens(ctx).library(video_fps=video_fps)
    ctx.call_on_close(library.close)
    options = replace(library.options(workers), video_fps=video_fps)
    executor = _executor(options, ray_address, workers) if ray_address is not None else None
    items = expand_sources(sources)
    before = library.store.item_counts()
    if before.done or before.failed:
        console.print(f"{before.done + before.failed} items already in {library.label}; continuing")
    try:
        with progress_bar("Scanning", None) as progress:

            def step(done: int, total: int, source: str) -> None:
                progress.update(progress.task_ids[0], total=total)
                advance(progress)

            summary = library.scan(
                items,
                executor=executor,
                batch_size=batch_size,
                limit=limit,
                retry_failed=retry_failed,
                progress=step,
            )
    finally:
        if executor is not None:
            executor.close()
    if as_json:
        emit_json({**summary.to_dict(), "library": str(library.label)})
    else:
        if summary.failures:
            print_table(
                "Failed items", ["item", "reason"], [list(f) for f in summary.failures[-20:]]
            )
        grouping = summary.grouping.to_dict() if summary.grouping else {}
        console.print(
            f"{summary.processed} items read ({summary.faces} faces, {summary.failed} failed, "
            f"{summary.duplicates} already known) in {summary.seconds:.1f} s; "
            f"{grouping.get('groups_created', 0)} new groups; {summary.counts.done} done, "
            f"{summary.counts.pending} pending, {summary.counts.failed} failed in {library.label}"
        )
    if summary.failed:
        ctx.exit(1)


def stored_scan_model(path: Path) -> str | None:
    """The embedder a scan index was made with (None when there is no such file yet)."""
    if not path.is_file():
        return None
    import sqlite3
    from contextlib import closing

    from facelens.ingest.scan_index import refuse_other_kind

    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        refuse_other_kind(db, path)  # a gallery given as --scan: before any photo is read
        row = db.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
    return None if row is None else str(row[0])
