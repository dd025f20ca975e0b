"""Options the CLI must refuse in one line, before any work, never with a traceback.

Unwritable outputs exit 1 naming the path given and the reason; impossible numbers
(zero, negative, NaN, an empty time window) and an id that names no embedder are
usage errors (exit 2) naming the option. Every case here is refused before a model
loads, so the commands run in-process with click's runner (about a second for all).
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path

import av
import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelens.cli.common import FiniteFloat, writable_file, writable_folder
from facelens.cli.main import MIN_MAX_SIDE, cli
from facelens.models import registry


@pytest.fixture(scope="module")
def files(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A photo (scikit-image's astronaut) and a 10-frame clip of its head, 96x96 at 10 fps."""
    root = tmp_path_factory.mktemp("refusals")
    photo = root / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    clip = root / "clip.mp4"
    head = np.ascontiguousarray(
        np.asarray(Image.fromarray(astronaut[0:300, 100:400]).resize((96, 96)))
    )
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 96, "yuv420p"
        for _ in range(10):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(head, format="rgb24")))
        out.mux(stream.encode(None))
    return {"photo": photo, "clip": clip}


def invoke(*args: str | Path, gallery: Path) -> tuple[int, str]:
    """``facelens ARGS`` in-process: the exit status, and stdout + stderr with the
    traceback of any exception the command let escape (as a user would see it)."""
    result = CliRunner().invoke(cli, [str(a) for a in args], env={"FACELENS_GALLERY": str(gallery)})
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        text += "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, text


def refused(status: int, *args: str | Path, gallery: Path, says: tuple[str, ...]) -> str:
    """Run ``facelens ARGS``; check the exit status, that no traceback is shown and that
    the message holds each of ``says``; returns the output."""
    code, text = invoke(*args, gallery=gallery)
    assert "Traceback" not in text, text
    assert code == status, text
    for words in says:
        assert words in text, text
    return text


@pytest.mark.parametrize("where", ["/proc/nope", "PHOTO/sub"])
@pytest.mark.parametrize(
    "command",
    [["detect", "PHOTO", "--draw"], ["anonymize", "PHOTO", "-o"], ["analyze", "PHOTO", "--draw"]],
)
def test_an_output_folder_that_cannot_be_made_is_one_line(
    files: dict[str, Path], tmp_path: Path, command: list[str], where: str
) -> None:
    """A folder under /proc, or under a file: exit 1 naming the path, before any model loads."""
    photo = str(files["photo"])
    target = where.replace("PHOTO", photo)
    args = [photo if a == "PHOTO" else a for a in command]
    reason = (
        "No such file or directory" if where.startswith("/proc") else f"{photo} is not a folder"
    )
    refused(1, *args, target, gallery=tmp_path / "g.db", says=(f"cannot write {target}: {reason}",))


@pytest.mark.parametrize("option", ["--csv", "--timeline-png", "--draw"])
def test_video_identify_refuses_an_unwritable_output_before_the_run(
    files: dict[str, Path], tmp_path: Path, option: str
) -> None:
    """Checked up front: the refusal comes before the video is read, not after the run."""
    target = f"/proc/x{'.csv' if option == '--csv' else '.png' if 'png' in option else '.mp4'}"
    refused(
        1, "video", "identify", files["clip"], option, target,
        gallery=tmp_path / "g.db", says=(f"cannot write {target}: ",),
    )  # fmt: skip
    under_a_file = files["photo"] / "out.csv"
    refused(
        1, "video", "identify", files["clip"], option, under_a_file,
        gallery=tmp_path / "g.db", says=(f"{files['photo']} is not a folder",),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "option", "value", "says"),
    [
        (["video", "identify", "CLIP"], "--start", "nan", "'nan' is not a finite number"),
        (["video", "identify", "CLIP"], "--end", "inf", "'inf' is not a finite number"),
        (["video", "identify", "CLIP"], "--fps", "nan", "'nan' is not a finite number"),
        (["video", "identify", "CLIP"], "--start", "-1", "not in the range x>=0"),
        (["analyze-video", "CLIP"], "--every", "0", "0 is not in the range x>=1"),
        (["analyze-video", "CLIP"], "--fps", "0", "not in the range x>0"),
        (["analyze-video", "CLIP"], "--window", "nan", "'nan' is not a finite number"),
        (["analyze-video", "CLIP"], "--window", "-1", "not in the range x>=0"),
        (["analyze-video", "CLIP"], "--start", "nan", "'nan' is not a finite number"),
        (["ingest", "PHOTO", "--scan", "SCAN"], "--video-fps", "0", "not in the range x>0"),
        (["ingest", "PHOTO", "--scan", "SCAN"], "--video-fps", "nan", "is not a finite number"),
        (["ingest", "PHOTO", "--scan", "SCAN"], "--batch-size", "0", "not in the range x>=1"),
        (["ingest", "PHOTO", "--scan", "SCAN"], "--batch-size", "-3", "not in the range x>=1"),
        (["ingest", "PHOTO", "--scan", "SCAN"], "--workers", "-1", "not in the range x>=1"),
        (["ingest", "PHOTO"], "--workers", "0", "not in the range x>=1"),
        (["ingest", "PHOTO", "--scan", "SCAN"], "--limit", "-1", "not in the range x>=0"),
        (["search", "PHOTO", "--scan", "SCAN"], "--limit", "0", "0 is not in the range x>=1"),
    ],
)
def test_impossible_numbers_are_usage_errors(
    files: dict[str, Path], tmp_path: Path, command: list[str], option: str, value: str, says: str
) -> None:
    """Zero, negative and non-finite values: exit 2 naming the option, nothing processed."""
    scan = tmp_path / "scan.db"
    named = {"CLIP": str(files["clip"]), "PHOTO": str(files["photo"]), "SCAN": str(scan)}
    args = [named.get(a, a) for a in command]
    refused(2, *args, option, value, gallery=tmp_path / "g.db", says=(option, says))
    assert not scan.exists() and not (tmp_path / "g.db").exists()  # refused before any work


@pytest.mark.parametrize("command", [["video", "identify"], ["analyze-video"]])
@pytest.mark.parametrize(("start", "end"), [("5", "1"), ("2", "2"), (None, "0")])
def test_a_time_window_that_ends_before_it_starts_is_refused(
    files: dict[str, Path], tmp_path: Path, command: list[str], start: str | None, end: str
) -> None:
    """--end at or before --start (0 by default) would read no frame: a usage error."""
    window = ["--end", end] + (["--start", start] if start else [])
    text = refused(2, *command, files["clip"], *window, gallery=tmp_path / "g.db", says=("--end",))
    if start:
        assert f"{end} s is not after --start ({start} s)" in text


@pytest.mark.parametrize("value", ["-5", "0", "1", str(MIN_MAX_SIDE - 1), "nan"])
def test_max_side_below_the_minimum_is_refused(
    files: dict[str, Path], tmp_path: Path, value: str
) -> None:
    """A searched copy of a few pixels finds no face: refused, with the minimum in --help."""
    refused(2, "--max-side", value, "detect", files["photo"], gallery=tmp_path / "g.db",
            says=("--max-side",))  # fmt: skip
    _, help_text = invoke("--help", gallery=tmp_path / "g.db")
    assert f"at least {MIN_MAX_SIDE}" in " ".join(help_text.split())


def test_an_unknown_embedder_is_one_usage_error_listing_the_embedders(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """Not "skipped" once per file, and only embedders in the list (no detector or attribute
    model); a detector's id is named as one."""
    specs = registry.all_specs()
    embedders = sorted(s.id for s in specs if s.task == "embedder")
    others = [s.id for s in specs if s.task != "embedder"]
    assert embedders and others
    text = refused(
        2, "--embedder", "nope", "detect", files["photo"], gallery=tmp_path / "g.db",
        says=("--embedder", "no model 'nope'", ", ".join(embedders)),
    )  # fmt: skip
    assert "skipped" not in text
    assert not any(other in text for other in others), text
    text = refused(
        2, "--embedder", registry.DEFAULT_DETECTOR, "detect", files["photo"],
        gallery=tmp_path / "g.db", says=("is a detector, not an embedder",),
    )  # fmt: skip


def test_sensible_values_still_pass(tmp_path: Path) -> None:
    """The smallest accepted --max-side and a real embedder id parse (``models`` loads
    nothing); the output checks make nested folders and leave no file behind."""
    code, text = invoke(
        "--max-side", str(MIN_MAX_SIDE), "--embedder", registry.SFACE_EMBEDDER, "models",
        gallery=tmp_path / "g.db",
    )  # fmt: skip
    assert code == 0 and registry.SFACE_EMBEDDER in text, text
    folder = writable_folder(str(tmp_path / "a" / "b"))
    assert folder.is_dir() and list(folder.iterdir()) == []
    target = writable_file(str(tmp_path / "c" / "d.csv"))
    assert target.parent.is_dir() and not target.exists()


def test_finite_float_refuses_nan_and_infinities() -> None:
    """click's FloatRange lets NaN through every bound; FiniteFloat does not."""
    assert math.isnan(click.FloatRange(min=0).convert("nan", None, None))
    finite = FiniteFloat(min=0)
    assert finite.convert("2.5", None, None) == 2.5
    for value in ("nan", "inf", "-inf"):
        with pytest.raises(click.BadParameter):
            finite.convert(value, None, None)
