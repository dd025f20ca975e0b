"""``facelens eval``: measure accuracy on benchmark protocols."""

from __future__ import annotations

from pathlib import Path

import click

from facelens.cli.common import friendly_errors, get_lens, json_option
from facelens.cli.output import advance, emit_json, print_table, progress_bar
from facelens.evaluation.lfw import run_lfw


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
    """The LFW pairs protocol on ROOT/pairs.txt: k folds, threshold picked on the others."""
    lens = get_lens(ctx)
    with progress_bar("Embedding LFW images", None) as progress:
        result = run_lfw(
            lens.analyzer,
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
