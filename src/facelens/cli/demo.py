"""``facelens demo``: the quickstart job, end to end on the embedded gallery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from facelens.api import FaceLens
from facelens.apps.demo import default_data_root, plan_demo
from facelens.apps.draw import KNOWN, UNKNOWN, draw_faces, save_drawing
from facelens.cli.common import friendly_errors
from facelens.cli.identify import print_identifications
from facelens.cli.output import console

__all__ = ["command"]


@click.command("demo")
@click.option(
    "--data",
    "data_root",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared data folder (default: $FACELENS_DATA or ../shared/data).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="demo-output",
    show_default=True,
    help="Where the gallery, the JSON results and the annotated photos go.",
)
@friendly_errors
def command(data_root: str | None, out_dir: str) -> None:
    """Enroll a folder-per-person set, identify a folder of photos, print a table, write JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gallery = out / "demo-gallery.db"
    for stale in out.glob("demo-gallery.db*"):
        stale.unlink()
    plan = plan_demo(Path(data_root) if data_root else default_data_root())
    console.print(f"Demo data: {plan.description}")
    with FaceLens(gallery=gallery) as lens:
        for name, photos in plan.enrollments.items():
            report = lens.enroll(name, photos)
            console.print(
                f"enrolled {report.name}: {len(report.accepted)} photo(s) added, "
                f"{len(report.rejected)} rejected"
            )
        records: list[dict[str, Any]] = []
        for index, probe in enumerate(plan.probes):
            label = str(probe) if isinstance(probe, Path) else f"<astronaut-mirrored-{index}>"
            image = lens.pipeline.load(probe)
            matches = lens.identify(image)
            records.append({"source": label, "faces": [m.to_dict() for m in matches]})
            labels = [m.identity or "unknown" for m in matches]
            colours = [KNOWN if m.identity else UNKNOWN for m in matches]
            save_drawing(
                draw_faces(image.pixels, [m.face for m in matches], labels, colours),
                out / "drawn",
                label if isinstance(probe, Path) else "astronaut",
            )
    print_identifications(records)
    results = out / "identify.json"
    results.write_text(json.dumps(records, indent=2))
    console.print(f"JSON: {results}   annotated photos: {out / 'drawn'}   gallery: {gallery}")
