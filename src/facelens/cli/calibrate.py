"""``facelens calibrate``: fit the gallery embedder's calibration on the deployment's people.

See :mod:`facelens.match.deployment` for what is fitted and how its uncertainty
is reported. The calibration is stored in the gallery and from then on every
decision made with it uses it (and names it: ``"calibration": "gallery:<id>"``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from facelens.cli.common import friendly_errors, get_lens, json_option, require_gallery
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.errors import CalibrationError, InputError
from facelens.evaluation.dataset import LabelledImage, embed_images, read_tree
from facelens.evaluation.pairs import file_pairs
from facelens.gallery.store import CalibrationRecord
from facelens.match.calibration import calibration_for
from facelens.match.deployment import Pairs, all_pairs, fit_deployment, listed_pairs

__all__ = ["command", "print_calibration"]


@click.command("calibrate")
@click.argument("sources", metavar="TREE_OR_PAIRS_FILE...", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--fmr",
    "targets",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    multiple=True,
    help="A false-match rate the calibration must support (repeatable); refused, with how many "
    "more people it would take, when the set is too small. The smallest becomes the default "
    "operating point (else 1e-4, or the smallest rate the set supports).",
)
@click.option(
    "--identity-regex",
    default=None,
    help="Read the identity from the image path: the first group of this regex "
    "(default: the top folder; a flat folder: the name before the first dot).",
)
@click.option("--images", "images_dir", default=None, help="Pairs file only: its images folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the person folds.")
@click.option("--remove", is_flag=True, help="Take the gallery's calibration out of force.")
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    sources: tuple[str, ...],
    targets: tuple[float, ...],
    identity_regex: str | None,
    images_dir: str | None,
    seed: int,
    remove: bool,
    as_json: bool,
) -> None:
    """Fit the gallery embedder's thresholds and likelihood ratios on your own people.

    Each TREE holds one folder per person (a person with the same folder name in two
    trees is one person); a pairs file (LFW format) gives its own pairs. Every two
    photos make a pair; the thresholds are kept for the false-match rates with at
    least 10 different-person pairs above them, each with its 95% interval, and the
    held-out rate and Cllr from folds of people. Stored in the gallery, it is used by
    every decision from then on; `--remove` goes back to the shipped calibration.
    """
    lens = get_lens(ctx)
    if remove:
        require_gallery(ctx)  # nothing to take out of force: no empty gallery made for it
        removed = lens.gallery.remove_calibration()
        if as_json:
            emit_json({"removed": None if removed is None else removed.id})
        else:
            console.print(
                "no calibration was in force"
                if removed is None
                else f"removed calibration {removed.id}; decisions use the shipped one again"
            )
        return
    if not sources:
        raise click.UsageError("give at least one TREE or pairs file (or --remove)")
    images, labels, first, second = _read_sources(
        [Path(s) for s in sources], identity_regex, images_dir
    )
    model_id = lens.pipeline.embedder_id
    with progress_bar(f"Embedding with {model_id}", len(images)) as progress:
        templates = embed_images(
            lens.pipeline, [(im.key, im.path) for im in images], lambda: advance(progress)
        )
    path_of = {image.key: str(image.path) for image in images}
    for error in templates.errors:  # named by the user's path, not the internal key
        where = path_of.get(error["image"], error["image"])
        reason = error["error"].removeprefix(f"{where}: ")
        console.print(f"[red]skipped[/red] {where}: {reason}")
    pairs = _pairs(templates.matrix, templates.row, images, labels, first, second)
    try:
        shipped = calibration_for(model_id)
    except CalibrationError:
        shipped = None
    fit = fit_deployment(
        model_id,
        pairs,
        sources=list(sources),
        images=len(templates.row),
        targets=targets,
        shipped=shipped,
        command=" ".join(shlex.quote(a) for a in ["facelens", *sys.argv[1:]]),
        seed=seed,
    )
    stored = lens.gallery.store_calibration(fit.record)
    if as_json:
        emit_json(stored.summary())
    else:
        print_calibration(stored)
    if templates.errors:  # as every batch command: stored from the rest, but not all was read
        ctx.exit(1)


def _read_sources(
    paths: list[Path], identity_regex: str | None, images_dir: str | None
) -> tuple[list[LabelledImage], list[str], list[str], list[str]]:
    """Every image (keyed by source) with its person; listed pairs (keys) of pairs files."""
    images: list[LabelledImage] = []
    first: list[str] = []
    second: list[str] = []
    for number, path in enumerate(paths):
        prefix = f"{number}:"
        if path.is_file():
            listed = file_pairs(path, images_dir)
            images += [LabelledImage(im.identity, im.path, prefix + im.key) for im in listed.images]
            first += [prefix + listed.images[i].key for i in listed.first]
            second += [prefix + listed.images[i].key for i in listed.second]
        else:
            tree = read_tree(path, identity_regex)
            images += [LabelledImage(im.identity, im.path, prefix + im.key) for im in tree.images]
    if first and any(p.is_dir() for p in paths):
        raise InputError("give either trees or pairs files, not both")
    return images, [im.identity for im in images], first, second


def _pairs(
    matrix: np.ndarray,
    row: dict[str, int],
    images: list[LabelledImage],
    labels: list[str],
    first: list[str],
    second: list[str],
) -> Pairs:
    """All pairs of the embedded images of trees, or the listed pairs of pairs files."""
    names = {name: i for i, name in enumerate(sorted(set(labels)))}
    person = np.full(len(matrix), -1)
    for image in images:
        if image.key in row:
            person[row[image.key]] = names[image.identity]
    if first:
        kept = [
            (row[a], row[b]) for a, b in zip(first, second, strict=True) if a in row and b in row
        ]
        a, b = (
            (np.array(c, dtype=int) for c in zip(*kept, strict=True))
            if kept
            else (np.zeros(0, int),) * 2
        )
        return listed_pairs(matrix, person, a, b)
    return all_pairs(matrix, person)


def print_calibration(stored: CalibrationRecord) -> None:
    """The calibration as tables: counts and Cllr, then thresholds with intervals."""
    record: dict[str, Any] = stored.record
    cllr = record["cllr"]
    facts = [
        ["calibration", f"{record['source']} (version {stored.version})"],
        ["embedder", record["model_id"]],
        ["fitted on", f"{record['people']} people, {record['images']} images"],
        [
            "pairs",
            f"{record['genuine_pairs']:,} same-person, {record['impostor_pairs']:,} different",
        ],
        [
            "default fmr",
            f"{record['default_fmr']:g} (smallest supported {record['smallest_fmr']:g})",
        ],
        ["Cllr (bits)", f"shipped {_num(cllr['shipped'])}, held-out {_num(cllr['held_out'])}"],
        [
            "created",
            stored.created + ("" if stored.removed is None else f", removed {stored.removed}"),
        ],
    ]
    print_table("Calibration", ["fact", "value"], facts)
    print_table(
        "Thresholds",
        ["fmr", "threshold", "observed", "95% interval", "held-out fmr", "tar"],
        [
            [
                f"{t['fmr']:g}",
                f"{t['threshold']:.4f}",
                f"{t['far_observed']:.2g}",
                f"{t['ci95'][0]:.2g}-{t['ci95'][1]:.2g}",
                "-" if t["held_out_fmr"] is None else f"{t['held_out_fmr']:.2g}",
                f"{100 * t['tar']:.1f}%",
            ]
            for t in record["thresholds"]
        ],
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
