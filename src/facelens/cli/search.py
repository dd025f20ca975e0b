"""``facelens search``: every appearance of a person across an ingested collection."""

from __future__ import annotations

import os
from pathlib import Path

import click

from facelens.cli.common import (
    friendly_errors,
    get_lens,
    json_option,
    no_library,
    operating_point_options,
)
from facelens.cli.ingest import scan_option, stored_scan_model
from facelens.cli.output import console, emit_json, print_table
from facelens.cluster.library_store import library_exists, library_location
from facelens.errors import GalleryError
from facelens.gallery.protection import resolve_gallery_key
from facelens.ingest.scan_index import ScanIndex
from facelens.ingest.search import search_appearances
from facelens.io.image import source_label
from facelens.match.calibration import calibration_for, operating_point
from facelens.match.decide import main_face
from facelens.pipeline.faces import FacePipeline

__all__ = ["command"]


@click.command("search")
@click.argument("photo", type=click.Path())
@scan_option
@operating_point_options
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Appearances listed at most.",
)
@click.option("--all", "include_below", is_flag=True, help="Also list faces below the threshold.")
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    photo: str,
    scan_path: str | None,
    fmr: float | None,
    threshold: float | None,
    limit: int,
    include_below: bool,
    as_json: bool,
) -> None:
    """Find the person of PHOTO (its largest face) in every photo and video of the library
    (or of the scan index given with --scan)."""
    obj = ctx.ensure_object(dict)
    if scan_path is None:
        lens = get_lens(ctx)
        location = library_location(obj.get("gallery"))
        if not library_exists(location):
            raise no_library(location)
        library = lens.library(location if isinstance(location, Path) else None)
        ctx.call_on_close(library.close)
        where = library.label
        pipeline = lens.pipeline
        model = pipeline.embedder_id
    else:
        where = scan_path
        stored = stored_scan_model(Path(scan_path))
        if stored is None:
            raise GalleryError(f"{scan_path}: no scan index there; make one with `facelens ingest`")
        model = stored
        kwargs = {"max_side": obj["max_side"]} if obj.get("max_side") else {}
        pipeline = FacePipeline(embedder=model, **kwargs)
    face = main_face(pipeline.detect(photo), source_label(photo))
    assert face.template is not None
    # the gallery's calibration in force for a library; a scan index's model: its shipped one
    calibration = lens.calibration if scan_path is None else calibration_for(model)
    point = operating_point(calibration, fmr=fmr, threshold=threshold)
    if scan_path is None:
        faces = library.scan_faces()
    else:
        scan = ScanIndex(scan_path, model, cipher=resolve_gallery_key(obj.get("key_file")))
        try:
            faces = scan.faces()
        finally:
            scan.close()
    found = search_appearances(
        face.template.vector, faces, point, calibration, limit=limit, include_below=include_below
    )
    if as_json:
        emit_json(
            {
                "photo": photo,
                "threshold": point.threshold,
                "fmr": point.fmr,
                "calibration": point.calibration,
                "faces_searched": len(faces.face_ids),
                "appearances": [a.to_dict() for a in found],
            }
        )
        return
    rows = [
        [
            _where(a.source, a.frame_index, a.time),
            "{:.0f},{:.0f} {:.0f}x{:.0f}".format(*a.box),
            f"{a.score:.3f}",
            "" if a.llr is None else f"{a.llr:.2f}",
            f"{a.score_fmr:.1e}",
            "yes" if a.match else "no",
        ]
        for a in found
    ]
    print_table(
        f"{photo} in {where}",
        ["where", "box x,y wxh", "score", "llr", "score fmr", "match"],
        rows,
    )
    matches = sum(a.match for a in found)
    console.print(
        f"{matches} appearances at or above {point.threshold:.3f} (FMR {point.fmr:g}) "
        f"among {len(faces.face_ids)} faces"
    )


def _where(source: str, frame_index: int | None, time: float | None) -> str:
    """The file, relative to the current folder when inside it, and the video time."""
    relative = os.path.relpath(source)
    label = source if relative.startswith("..") else relative
    if frame_index is None:
        return label
    return f"{label} @ {time or 0.0:.2f} s (frame {frame_index})"
