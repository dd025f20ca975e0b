"""The ``facelens`` command: one group, one module per command family."""

from __future__ import annotations

import ctypes
import importlib
import os
from typing import NamedTuple

import click

from facelens import settings
from facelens.cli.output import print_exposed_file_warnings
from facelens.models import registry
from facelens.pipeline.detect import DEFAULT_MAX_SIDE
from facelens.version import __version__

__all__ = ["MIN_MAX_SIDE", "cli", "main"]

MIN_MAX_SIDE = 16
"""Smallest ``--max-side``: half of YuNet's coarsest stride (it pads its input to multiples
of 32 px). Below it the copy searched is a few pixels, an option typed wrong rather than a
choice; at 16 px the detector is still run, and finds next to nothing (the tests use
``--max-side 16`` as a detector that misses the face; even at 32 px a face-filling
200x250 crop of scikit-image's astronaut is missed, at 48 px it is found)."""


class _Entry(NamedTuple):
    """Where a command lives (``facelens.cli.<module>``, its attribute there) and its summary:
    the first sentence of its help, so `facelens --help` lists every command without importing
    any (tests/test_startup.py checks each summary against the command's own help)."""

    module: str
    attribute: str
    summary: str


_COMMANDS = {
    "detect": _Entry(
        "detect", "command", "Find every face in IMAGES (files or folders, walked recursively)."
    ),
    "enroll": _Entry("enroll", "command", "Enroll NAME from IMAGES (files or folders)."),
    "people": _Entry("people", "command", "Manage the people of the gallery."),
    "identify": _Entry(
        "identify",
        "command",
        "Identify every face in PATHS (files or folders, walked recursively).",
    ),
    "verify": _Entry(
        "verify",
        "command",
        "Compare the largest face of IMAGE_A with the largest face of IMAGE_B.",
    ),
    "eval": _Entry("evaluate", "command", "Evaluate recognition accuracy."),
    "demo": _Entry(
        "demo",
        "command",
        "Enroll a folder-per-person set, identify a folder of photos, print a table, write JSON.",
    ),
    "models": _Entry(
        "models", "command", "List registered models with source, sha256 and licence."
    ),
    "gallery": _Entry(
        "gallery",
        "command",
        "The gallery file: encryption of templates at rest, key rotation, facts.",
    ),
    # the deployment's own calibration (match.deployment)
    "calibrate": _Entry(
        "calibrate",
        "command",
        "Fit the gallery embedder's thresholds and likelihood ratios on your own people.",
    ),
    # the REST service (facelens.service)
    "serve": _Entry(
        "serve",
        "command",
        "Serve the REST API (docs at /docs) and the web page (/web/) until stopped.",
    ),
    "keys": _Entry(
        "keys",
        "command",
        "API keys of `facelens serve` (stored hashed; roles query < enroll < admin).",
    ),
    "audit": _Entry(
        "audit", "command", "The service's audit log, oldest first (never templates or images)."
    ),
    # expression, apparent age and gender (facelens.analysis)
    "analyze": _Entry(
        "analyze",
        "command",
        "Expression (7 classes with probabilities), apparent age and gender of every face in "
        "IMAGES (files or folders, walked recursively).",
    ),
    # expression over time per tracked face
    "analyze-video": _Entry(
        "analyze",
        "video_command",
        "Expression over time of every tracked face in VIDEOS (files, image folders or globs, "
        "webcam indexes, URLs): per-frame probabilities smoothed in a centred window along "
        'each track, cut into segments ("happy from 1.2 s to 3.4 s").',
    ),
    # grouping unknown faces (facelens.cluster)
    "cluster": _Entry(
        "cluster",
        "command",
        "Group unknown faces into people: `facelens cluster SOURCE...`, then correct and name.",
    ),
    # hiding faces in images and videos (facelens.privacy)
    "anonymize": _Entry(
        "anonymize",
        "command",
        "Hide every face (or all but --keep, or only --only) in INPUTS: images, videos, folders.",
    ),
    # faces in video: tracks and identities (facelens.video)
    "video": _Entry(
        "video", "command", "Faces in video: tracks, identities over time, annotated copies."
    ),
    # large collections (facelens.ingest)
    "ingest": _Entry(
        "ingest",
        "command",
        "Find every face in SOURCES (files, folders, @file-lists; photos and videos).",
    ),
    # where a person appears
    "search": _Entry(
        "search",
        "command",
        "Find the person of PHOTO (its largest face) in every photo and video of the library "
        "(or of the scan index given with --scan).",
    ),
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs.

    ``facelens eval lfw`` then never imports scipy, PyAV or the attribute
    models: 50 MB less resident memory and 0.4 s less start-up
    (docs/benchmarks.md, "Memory"). `facelens --help` lists the commands from their
    summaries in :data:`_COMMANDS` and imports none of them (0.7-0.9 s and 74 MB, against
    2.5-2.9 s and 159 MB when it imported every module: benchmarks/cli_startup.py).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            entry = _COMMANDS[cmd_name]
            module = importlib.import_module(f"facelens.cli.{entry.module}")
            self.add_command(getattr(module, entry.attribute), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The Commands section of the help, from each command's summary (no import)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in _COMMANDS and name not in self.commands:
                summary = click.Command(name, help=_COMMANDS[name].summary)
                rows.append((name, summary.get_short_help_str(limit)))
            else:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--gallery",
    type=click.Path(dir_okay=False),
    default=None,
    help="Gallery file (default: $FACELENS_GALLERY, else the user data folder).",
)
@click.option(
    "--max-side",
    type=click.IntRange(min=MIN_MAX_SIDE),
    default=None,
    help=f"Longest side in pixels of the copy searched for faces, at least {MIN_MAX_SIDE} "
    f"(default {DEFAULT_MAX_SIDE}).",
)
@click.option(
    "--embedder",
    default=None,
    callback=lambda _ctx, _param, value: _known_embedder(value),
    help="Embedder id (see `facelens models`); default: the gallery's own, else "
    f"{registry.DEFAULT_EMBEDDER}.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Key of an encrypted gallery (default: $FACELENS_GALLERY_KEY_FILE, "
    "else the key in $FACELENS_GALLERY_KEY).",
)
@click.option(
    "--providers",
    default=None,
    metavar="NAMES",
    help="onnxruntime execution providers, comma-separated, in order of preference "
    "(e.g. CUDAExecutionProvider,CPUExecutionProvider); default: $FACELENS_PROVIDERS, "
    "else CPUExecutionProvider.",
)
@click.version_option(__version__, prog_name="facelens")
@click.pass_context
def cli(
    ctx: click.Context,
    gallery: str | None,
    max_side: int | None,
    embedder: str | None,
    key_file: str | None,
    providers: str | None,
) -> None:
    """Find faces, keep a gallery of known people, identify and verify them."""
    if providers is not None:
        _use_providers(providers)
    ctx.ensure_object(dict).update(
        {"gallery": gallery, "max_side": max_side, "embedder": embedder, "key_file": key_file}
    )
    print_exposed_file_warnings(ctx)  # a gallery others can read: one line on stderr


def _known_embedder(model_id: str | None) -> str | None:
    """``--embedder``: refuse an id that names no embedder (an unknown id, or a detector or
    attribute model) as a usage error listing the embedders there are."""
    if model_id is None:
        return None
    from facelens.errors import FaceLensError

    try:
        specs = {spec.id: spec.task for spec in registry.all_specs()}
    except (FaceLensError, KeyError, TypeError, ValueError):
        return model_id  # a bad file of user models: the command reports it, as before
    if specs.get(model_id) == "embedder":
        return model_id
    embedders = ", ".join(sorted(i for i, task in specs.items() if task == "embedder"))
    task = specs.get(model_id)
    what = (
        f"no model {model_id!r}"
        if task is None
        else f"{model_id!r} is {'an attribute model' if task == 'attribute' else 'a ' + task}, "
        "not an embedder"
    )
    raise click.BadParameter(f"{what}; the embedders are: {embedders}", param_hint="--embedder")


def _use_providers(text: str) -> None:
    """Check the providers of ``--providers`` and put them in force for this command (and
    the processes it starts) through ``$FACELENS_PROVIDERS``."""
    from facelens.errors import ProviderUnavailableError
    from facelens.models.runtime import resolve_providers

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one provider", param_hint="--providers")
    try:
        chosen = resolve_providers(names)
    except ProviderUnavailableError as exc:
        raise click.BadParameter(str(exc), param_hint="--providers") from None
    os.environ[settings.PROVIDERS.name] = ",".join(chosen)


def main() -> None:
    _limit_malloc_arenas()
    cli(prog_name="facelens")


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas for this process (before any worker thread starts).

    Every thread that allocates gets its own arena by default (up to 8 per
    core), and each keeps freed memory: with the worker and onnxruntime
    threads of ``detect_many`` that held 30-55 MB more at the peak of
    ``facelens eval lfw`` (docs/benchmarks.md, "Memory"). No effect elsewhere.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    main()
