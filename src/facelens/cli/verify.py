"""``facelens verify``: are two photos of the same person?"""

from __future__ import annotations

import click

from facelens.cli.common import friendly_errors, get_lens, json_option, operating_point_options
from facelens.cli.output import emit_json

__all__ = ["command"]


@click.command("verify")
@click.argument("image_a", type=click.Path())
@click.argument("image_b", type=click.Path())
@operating_point_options
@json_option
@click.pass_context
@friendly_errors
def command(
    ctx: click.Context,
    image_a: str,
    image_b: str,
    fmr: float | None,
    threshold: float | None,
    as_json: bool,
) -> None:
    """Compare the largest face of IMAGE_A with the largest face of IMAGE_B."""
    result = get_lens(ctx).verify(image_a, image_b, fmr=fmr, threshold=threshold)
    if as_json:
        emit_json(result.to_dict())
        return
    verdict = "same person" if result.same else "different people"
    click.echo(
        f"{verdict}: score {result.score:.3f}, threshold {result.threshold:.3f} "
        f"(false-match rate {result.fmr:.0e})"
    )
