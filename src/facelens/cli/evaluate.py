"""``facelens eval``: measure accuracy on benchmark protocols."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np

from facelens.api import FaceLens
from facelens.cli.common import friendly_errors, get_lens, json_option
from facelens.cli.output import advance, console, emit_json, print_table, progress_bar
from facelens.errors import CalibrationError
from facelens.evaluation.anonymization import RECOGNIZERS
from facelens.evaluation.anonymization import SIZES as ANONYMIZATION_SIZES
from facelens.evaluation.dataset import (
    FaceRule,
    LabelledImage,
    TemplateSet,
    embed_images,
    read_tree,
)
from facelens.evaluation.groups import read_groups
from facelens.evaluation.identification import evaluate_identification, split_identities
from facelens.evaluation.lfw import run_lfw
from facelens.evaluation.pairs import file_pairs, tree_pairs
from facelens.evaluation.report import identification_html, verification_html, write_html
from facelens.evaluation.verification import evaluate_verification
from facelens.match.calibration import Calibration
from facelens.match.scoring import Aggregation
from facelens.privacy.methods import METHODS

__all__ = ["command"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group("eval")
def command() -> None:
    """Evaluate recognition accuracy."""


@command.command("lfw")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--images",
    "subdir",
    default=None,
    help="Folder under ROOT holding <name>/<name>_<nnnn>.jpg (found automatically).",
)
@json_option
@click.pass_context
@friendly_errors
def lfw(ctx: click.Context, root: str, subdir: str | None, as_json: bool) -> None:
    """The LFW pairs protocol on ROOT/pairs.txt: k folds, threshold picked on the others
    (a single fold: on itself, and the JSON says threshold_on_same_fold)."""
    lens = get_lens(ctx)
    with progress_bar("Embedding LFW images", None) as progress:
        result = run_lfw(
            lens.pipeline,
            Path(root),
            subdir,
            on_start=lambda total: progress.update(progress.task_ids[0], total=total),
            on_done=lambda: advance(progress),
        )
    data = result.to_dict()
    if as_json:
        emit_json(data)
        return
    rows = [
        [str(i + 1), f"{a:.4f}", f"{t:.4f}"]
        for i, (a, t) in enumerate(zip(result.accuracies, result.thresholds, strict=True))
    ]
    print_table("LFW pairs", ["fold", "accuracy", "threshold"], rows)
    click.echo(
        f"accuracy {data['accuracy_mean']:.4f} ± {data['accuracy_std']:.4f} over {data['folds']} folds; "
        f"{data['images']} images, {data['fallbacks']} needed the centred-crop fallback"
    )


def _dataset_options(func: F) -> F:
    """Options shared by ``eval verify`` and ``eval identify``."""
    for option in reversed(
        [
            click.option(
                "--seed",
                type=int,
                default=0,
                show_default=True,
                help="Seed of every random choice.",
            ),
            click.option(
                "--identity-regex",
                default=None,
                help="Read the identity from the image path relative to the root: the first "
                "group of this regex (default: top folder; flat folder: name before the first dot).",
            ),
            click.option(
                "--face",
                type=click.Choice(["largest", "central"]),
                default=None,
                help="Which face of an image gives its template (default: largest; for a pairs "
                "file, central, as LFW labels it).",
            ),
            click.option(
                "--groups",
                "groups_csv",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="CSV 'identity_or_image,group': report every metric per group, and the gaps.",
            ),
            click.option(
                "--html",
                "html_out",
                type=click.Path(dir_okay=False),
                default=None,
                help="Write a self-contained HTML report with the plots here.",
            ),
            json_option,
        ]
    ):
        func = option(func)
    return func


@command.command("verify")
@click.argument("source", metavar="PAIRS_FILE_OR_TREE", type=click.Path(exists=True))
@click.option(
    "--images",
    "images_dir",
    default=None,
    help="Pairs file only: the folder holding <name>/<name>_<nnnn>.jpg "
    "(absolute, or relative to the pairs file; found automatically).",
)
@click.option(
    "--impostors",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Tree only: impostor pairs drawn (all of them when fewer exist).",
)
@click.option(
    "--max-genuine",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Tree only: at most this many genuine pairs (a seeded sample beyond).",
)
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="Tree only: folds of the accuracy.",
)
@_dataset_options
@click.pass_context
@friendly_errors
def verify(
    ctx: click.Context,
    source: str,
    images_dir: str | None,
    impostors: int,
    max_genuine: int,
    folds: int,
    face: FaceRule | None,
    seed: int,
    identity_regex: str | None,
    groups_csv: str | None,
    html_out: str | None,
    as_json: bool,
) -> None:
    """1:1 verification on a pairs file (LFW format) or a tree (one folder per person).

    From a tree, all genuine pairs and a seeded sample of impostor pairs are
    scored. Reports k-fold accuracy, ROC AUC, EER, TAR at FAR 1e-1..1e-4 (null
    when there are too few impostor pairs) and the DET curve.
    """
    lens = get_lens(ctx)
    path = Path(source)
    if path.is_file():
        pairs = file_pairs(path, images_dir)
    else:
        dataset = read_tree(path, identity_regex)
        pairs = tree_pairs(
            dataset, seed=seed, max_genuine=max_genuine, impostors=impostors, folds=folds
        )
    used = np.unique(np.concatenate([pairs.first, pairs.second]))
    rule: FaceRule = face or ("central" if path.is_file() else "largest")
    templates = _embed(lens, [pairs.images[i] for i in used], rule)
    groups, unmatched = _groups(groups_csv, pairs.images)
    try:
        in_force: Calibration | None = lens.calibration
    except CalibrationError:  # a user model not calibrated yet: nothing to check
        in_force = None
    result = evaluate_verification(
        pairs, templates, lens.pipeline.embedder_id, groups, calibration=in_force
    )
    if "groups" in result.data:
        result.data["groups"]["unmatched_labels"] = unmatched
    if html_out:
        write_html(Path(html_out), verification_html(result, f"Verification: {path.name}"))
    if as_json:
        emit_json(result.data)
    else:
        _print_verification(result.data, html_out)
    if templates.errors:
        ctx.exit(1)


@command.command("identify")
@click.argument("tree", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--enroll",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Images enrolled per person (the first by path); the rest are probes.",
)
@click.option(
    "--unknown",
    type=click.IntRange(min=0),
    default=None,
    help="People held out as never-enrolled probes (default: --unknown-fraction of them).",
)
@click.option(
    "--unknown-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.25,
    show_default=True,
    help="Fraction of the people held out as never enrolled (seeded choice).",
)
@click.option(
    "--aggregation",
    type=click.Choice(["max", "centroid"]),
    default="max",
    show_default=True,
    help="One score per person: best template, or quality-weighted mean template.",
)
@_dataset_options
@click.pass_context
@friendly_errors
def identify(
    ctx: click.Context,
    tree: str,
    enroll: int,
    unknown: int | None,
    unknown_fraction: float,
    aggregation: Aggregation,
    face: FaceRule | None,
    seed: int,
    identity_regex: str | None,
    groups_csv: str | None,
    html_out: str | None,
    as_json: bool,
) -> None:
    """1:N identification on TREE (one folder per person): CMC and DIR at FPIR."""
    lens = get_lens(ctx)
    dataset = read_tree(Path(tree), identity_regex)
    templates = _embed(lens, list(dataset.images), face or "largest")
    split = split_identities(
        dataset,
        templates,
        enroll=enroll,
        unknown=unknown,
        unknown_fraction=unknown_fraction,
        seed=seed,
    )
    groups, unmatched = _groups(groups_csv, dataset.images)
    result = evaluate_identification(
        dataset, templates, split, lens.pipeline.embedder_id, groups, aggregation
    )
    if "groups" in result.data:
        result.data["groups"]["unmatched_labels"] = unmatched
    if html_out:
        page = identification_html(result, f"Identification: {Path(tree).name}")
        write_html(Path(html_out), page)
    if as_json:
        emit_json(result.data)
    else:
        _print_identification(result.data, html_out)
    if templates.errors:
        ctx.exit(1)


def _embed(lens: FaceLens, images: list[LabelledImage], face: FaceRule = "largest") -> TemplateSet:
    with progress_bar("Embedding images", len(images)) as progress:
        templates = embed_images(
            lens.pipeline, [(im.key, im.path) for im in images], lambda: advance(progress), face
        )
    for error in templates.errors:
        console.print(f"[red]skipped[/red] {error['image']}: {error['error']}")
    return templates


def _groups(
    groups_csv: str | None, images: tuple[LabelledImage, ...]
) -> tuple[list[str | None] | None, list[str]]:
    if groups_csv is None:
        return None, []
    groups, unmatched = read_groups(Path(groups_csv)).assign(images)
    if unmatched:
        console.print(f"[yellow]{len(unmatched)} group labels matched no image[/yellow]")
    return groups, unmatched


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _print_verification(data: dict[str, Any], html_out: str | None) -> None:
    rows = [
        ["pairs (genuine / impostor)", f"{data['genuine_pairs']:,} / {data['impostor_pairs']:,}"],
        ["ROC AUC", f"{data['auc']:.5f}"],
        ["EER", f"{_pct(data['eer'])} at {data['eer_threshold']:.4f}"],
        ["accuracy", f"{_pct(data['accuracy_mean'])} ± {_pct(data['accuracy_std'])}"],
    ]
    rows += [
        [f"TAR at FAR {r['far']:g}", r["reason"] if r["tar"] is None else _pct(r["tar"])]
        for r in data["tar_at_far"]
    ]
    _print_common(data, rows, "Verification", html_out)


def _print_identification(data: dict[str, Any], html_out: str | None) -> None:
    protocol = data["protocol"]
    rows = [
        [
            "probes (known / unknown)",
            f"{protocol['known_probes']:,} / {protocol['unknown_probes']:,}",
        ],
        ["rank-1", _pct(data["rank1"])],
        ["rank-5", _pct(data["rank5"])],
    ]
    rows += [
        [f"DIR at FPIR {r['fpir']:g}", r["reason"] if r["dir"] is None else _pct(r["dir"])]
        for r in data["dir_at_fpir"]
    ]
    _print_common(data, rows, "Identification", html_out)


def _print_common(
    data: dict[str, Any], rows: list[list[str]], title: str, html_out: str | None
) -> None:
    images = data["images"]
    rows.append(
        [
            "images (templates / no face / unreadable)",
            f"{images['templates']:,} / {images['no_face']:,} / {images['unreadable']:,}",
        ]
    )
    print_table(title, ["metric", "value"], rows)
    if "groups" in data:
        gaps = [
            [metric, f"{g['gap']:.4f}", f"{g['max_group']} - {g['min_group']}"]
            for metric, g in data["groups"]["gaps"].items()
            if g["gap"] is not None
        ]
        print_table("Gaps between groups", ["metric", "gap", "groups"], gaps)
    if html_out:
        click.echo(f"report written to {html_out}")


@command.command("anonymization")
@click.option(
    "--lfw",
    "lfw_root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="LFW folder (people folders, or images_deepfunneled/ under it).",
)
@click.option(
    "--videos",
    "videos_root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of video clips (searched recursively for .mp4).",
)
@click.option(
    "--faces", type=click.IntRange(min=2), default=100, show_default=True, help="LFW people."
)
@click.option(
    "--skip",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="LFW: leave out the first N people of the seeded order (held out from tuning).",
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=25,
    show_default=True,
    help="Videos: one frame in N.",
)
@click.option(
    "--sizes",
    default=",".join(str(s) for s in ANONYMIZATION_SIZES),
    show_default=True,
    help="Face sizes in pixels, comma-separated.",
)
@click.option(
    "--methods",
    default="none," + ",".join(METHODS),
    show_default=True,
    help="Methods (none = the attack's ceiling), hidden and verified as `facelens anonymize` "
    "does; blur:raw is drawn once, unverified; blur@0.25, pixelate@6, ellipse@1.2, +1.5 "
    "(margins x1.5) try other strengths.",
)
@click.option(
    "--recognizers",
    default=",".join(RECOGNIZERS),
    show_default=True,
    help="Registered embedders that attack.",
)
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None)
@click.option("--out", "json_out", type=click.Path(dir_okay=False), default=None)
@json_option
@friendly_errors
def anonymization(
    lfw_root: str | None,
    videos_root: str | None,
    faces: int,
    skip: int,
    every: int,
    sizes: str,
    methods: str,
    recognizers: str,
    html_out: str | None,
    json_out: str | None,
    as_json: bool,
) -> None:
    """Privacy curves: re-identification rate against face size per method and recognizer
    (at FMR 1e-2, the attacker holding the original), and the share of each image altered."""
    import json

    from facelens.evaluation.anonymization import lfw_samples, measure, parse_method, video_samples
    from facelens.evaluation.anonymization_report import anonymization_html
    from facelens.pipeline.faces import FacePipeline

    if lfw_root is None and videos_root is None:
        raise click.UsageError("give --lfw and/or --videos")
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    for method in method_list:
        if method != "none":
            try:
                parse_method(method)
            except ValueError as error:
                raise click.UsageError(str(error)) from error
    finder = FacePipeline()
    sets = {}
    if lfw_root is not None:
        sets["lfw"] = lfw_samples(Path(lfw_root), faces, finder, skip=skip)
    if videos_root is not None:
        sets["videos"] = video_samples(sorted(Path(videos_root).rglob("*.mp4")), finder, every)
    with progress_bar("Attacking", None) as progress:
        curves = measure(
            sets,
            sizes=[int(s) for s in sizes.split(",")],
            methods=method_list,
            recognizers=[r.strip() for r in recognizers.split(",") if r.strip()],
            on_step=lambda step: progress.update(progress.task_ids[0], description=step),
        )
    data = curves.to_dict()
    if lfw_root is not None:
        data["lfw_skip"] = skip
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if html_out:
        write_html(Path(html_out), anonymization_html(data))
    if as_json:
        emit_json(data)
        return
    rows = [[m, _pct(r)] for m, r in data["worst_rate"].items()]
    print_table("Worst re-identification rate", ["method", "any set, recognizer, size"], rows)
    if html_out:
        console.print(f"report: {html_out}")
