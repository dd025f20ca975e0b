"""``facelens models``: what models are registered, where they come from, their licences;
``models add`` / ``models remove``: face embedders the user brings (:mod:`facelens.models.user`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from facelens.cli.common import friendly_errors, json_option
from facelens.cli.output import console, emit_json, print_table
from facelens.errors import InputError
from facelens.models.registry import all_specs, builtin_ids
from facelens.models.user import (
    PRESETS,
    add_user_fusion,
    add_user_model,
    models_file,
    remove_user_model,
)

__all__ = ["command"]


@click.group("models", invoke_without_command=True)
@json_option
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """List registered models with source, sha256 and licence."""
    if ctx.invoked_subcommand is not None:
        return
    specs = [s.describe() for s in all_specs()]
    if as_json:
        emit_json(specs)
    else:
        print_table(
            "Models",
            ["id", "task", "source", "licence"],
            [[s["id"], s["task"], s["source"], s["licence"]] for s in specs],
        )


@command.command("add")
@click.argument("model_id", metavar="ID")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="arcface: 112x112 RGB (x-127.5)/127.5, ArcFace 5 points; facenet: 160x160 "
    "RGB (x-127.5)/128, the same points scaled.",
)
@click.option(
    "--size", type=click.IntRange(16, 1024), default=None, help="Square crop side, pixels."
)
@click.option("--colour", type=click.Choice(["RGB", "BGR"]), default=None, help="Channel order.")
@click.option("--mean", type=float, default=None, help="Subtracted from each pixel value (0-255).")
@click.option("--std", type=float, default=None, help="The difference is divided by this.")
@click.option(
    "--template",
    default=None,
    help="Where the 5 landmarks go in the crop, JSON: [[x, y], ...] (eyes, nose, "
    "mouth corners; image-left first). Default: the ArcFace layout scaled to --size.",
)
@click.option("--licence", default="", help="The model's licence, as you declare it.")
@friendly_errors
def add(
    model_id: str,
    file: str,
    preset: str | None,
    size: int | None,
    colour: str | None,
    mean: float | None,
    std: float | None,
    template: str | None,
    licence: str,
) -> None:
    """Register FILE (an ONNX face embedder you obtained) as the embedder ID.

    Its input is described by the options, else by FILE.json beside it (same keys:
    preset, size, colour, mean, std, template, licence). Its sha256 is recorded and
    checked every time it is loaded; nothing is downloaded. Then `--embedder ID` works
    everywhere; its decisions need a calibration: `facelens --embedder ID --gallery G
    calibrate TREE`.
    """
    try:
        points = None if template is None else json.loads(template)
    except ValueError as exc:
        raise InputError(f"--template must be JSON [[x, y], ...] ({exc})") from exc
    options = {
        "preset": preset,
        "size": size,
        "colour": colour,
        "mean": mean,
        "std": std,
        "template": points,
    }
    entry = add_user_model(model_id, Path(file), options, licence, builtin_ids())
    console.print(
        f"registered {model_id}: {entry['file']} (sha256 {entry['sha256'][:16]}...), "
        f"{entry['size']}x{entry['size']} {entry['colour']}, in {models_file()}. Next: "
        f"`facelens --embedder {model_id} --gallery NEW.db calibrate TREE`"
    )


@command.command("add-fusion")
@click.argument("model_id", metavar="ID")
@click.argument("parts", metavar="EMBEDDER:WEIGHT...", nargs=-1, required=True)
@click.option("--flip", "flipped", multiple=True, help="A part that also reads the mirror image.")
@friendly_errors
def add_fusion(model_id: str, parts: tuple[str, ...], flipped: tuple[str, ...]) -> None:
    """Register ID as a score-level fusion of embedders (shipped or your own), e.g.
    `facelens models add-fusion mine-plus-sface mine:0.7 sface-2021dec-int8bq:0.3`.
    The fused score is the weighted sum of the parts' cosines; like any user model it
    needs `facelens calibrate` before it decides."""
    pairs = []
    for part in parts:
        name, _, weight = part.rpartition(":")
        try:
            pairs.append((name, float(weight)))
        except ValueError:
            raise InputError(
                f"{part!r}: give EMBEDDER:WEIGHT, e.g. sface-2021dec-int8bq:0.5"
            ) from None
    known = {s.id for s in all_specs() if s.task == "embedder"}
    add_user_fusion(model_id, pairs, list(flipped), builtin_ids(), known)
    console.print(
        f"registered the fusion {model_id} in {models_file()}. Next: "
        f"`facelens --embedder {model_id} --gallery NEW.db calibrate TREE`"
    )


@command.command("remove")
@click.argument("model_id", metavar="ID")
@friendly_errors
def remove(model_id: str) -> None:
    """Forget the user model ID (its file is left where it is)."""
    if not remove_user_model(model_id):
        raise InputError(f"no user model {model_id!r} in {models_file()}")
    console.print(f"forgot {model_id}")
