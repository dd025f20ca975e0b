"""Options the CLI must refuse in one line, before any work, never with a traceback.

Unwritable outputs exit 1 naming the path given and the reason; impossible numbers
(zero, negative, NaN, an empty time window) and an id that names no embedder are
usage errors (exit 2) naming the option. A command that reads the gallery, the service
state or the library exits 1 naming the missing file and the command that makes it, and
makes nothing (no empty gallery for a typo in --gallery). Every case here is refused
before a model loads, so the commands run in-process with click's runner (a few seconds
for all).
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
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
from facelens.gallery import SQLiteGallery
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
    SQLiteGallery(tmp_path / "g.db", registry.DEFAULT_EMBEDDER).close()  # an empty gallery
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


def test_serve_refuses_a_bad_gallery_a_busy_port_and_a_missing_root_in_one_line(
    tmp_path: Path,
) -> None:
    """Before it announces itself or makes its state folder: one line, exit 1 (2 for the
    option), no traceback."""
    text = tmp_path / "notes.db"
    text.write_text("not a gallery")
    said = refused(1, "serve", "--port", "0", gallery=text, says=("not a facelens gallery",))
    assert "serving" not in said and not (tmp_path / "notes.db.service").exists()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        said = refused(
            1, "serve", "--port", port, gallery=tmp_path / "g.db",
            says=(f"cannot listen on 127.0.0.1:{port}", "choose another with --port"),
        )  # fmt: skip
    assert "serving" not in said and not (tmp_path / "g.db").exists()
    refused(
        2, "serve", "--port", "0", "--library-root", tmp_path / "nope", gallery=tmp_path / "g.db",
        says=(f"{tmp_path / 'nope'}: no such folder",),
    )  # fmt: skip


@pytest.mark.parametrize("option", ["--csv", "--timeline-png", "--draw"])
def test_video_identify_refuses_to_write_over_its_input(
    files: dict[str, Path], tmp_path: Path, option: str
) -> None:
    """An output named as the video itself (or a link to it) is a usage error, and the video
    is left as it was."""
    SQLiteGallery(tmp_path / "g.db", registry.DEFAULT_EMBEDDER).close()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(files["clip"].read_bytes())
    (tmp_path / "link.mp4").symlink_to(clip)
    for output in (clip, tmp_path / "link.mp4"):
        refused(
            2, "video", "identify", clip, option, output,
            gallery=tmp_path / "g.db", says=(f"{output} is the input {clip}", "destroy"),
        )  # fmt: skip
    assert clip.read_bytes() == files["clip"].read_bytes()


def test_anonymize_into_the_input_folder_numbers_its_outputs_and_keeps_the_originals(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """``anonymize photos -o photos`` writes ``astronaut-1.png`` beside the original, never
    over it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = folder / "astronaut.png"
    photo.write_bytes(files["photo"].read_bytes())
    code, text = invoke(
        "anonymize", folder, "-o", folder, "--no-verify", "--no-check", gallery=tmp_path / "g.db"
    )
    assert code == 0, text
    assert photo.read_bytes() == files["photo"].read_bytes()  # the original, untouched
    hidden = folder / "astronaut-1.png"
    assert hidden.is_file() and hidden.read_bytes() != photo.read_bytes()


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


# --- a gallery, service state or library that is not there: said, and nothing made ------

NO_GALLERY = "there is no gallery at {}; `facelens enroll NAME PHOTO...` makes it"
NO_STATE = (
    "there is no service state at {}; `facelens keys create --role ROLE` or `facelens serve` "
    "makes it"
)
NO_LIBRARY = (
    "there is no library at {}; `facelens ingest PHOTOS...` or `facelens cluster PHOTOS...` "
    "makes it"
)

READS_THE_GALLERY = [
    ["people", "list"],
    ["people", "list", "--json"],
    ["people", "show", "Ada"],
    ["people", "rename", "Ada", "Ada Lovelace"],
    ["people", "remove", "Ada"],
    ["gallery", "info"],
    ["gallery", "calibration", "history"],
    ["gallery", "calibration", "remove"],
    ["gallery", "encrypt", "--new-key-file", "new.key"],
    ["calibrate", "--remove"],
    ["identify", "PHOTO", "--draw", "drawn"],
    ["video", "identify", "CLIP", "--csv", "out/tracks.csv"],
    ["anonymize", "PHOTO", "-o", "out", "--keep", "Ada"],
]
READS_THE_SERVICE_STATE = [["audit"], ["keys", "list"], ["keys", "revoke", "0123abcd"]]
READS_THE_LIBRARY = [
    ["cluster", "show"],
    ["cluster", "html", "sheets"],
    ["cluster", "merge", "1", "2"],
    ["cluster", "name", "1", "Ada"],
    ["cluster", "forget", "1"],
    ["cluster", "run", "--rebuild"],  # regroups what is there: nothing to regroup
    ["search", "PHOTO"],
]


def run_in(folder: Path, files: dict[str, Path], *args: str, env: dict[str, str | None]) -> str:
    """``facelens ARGS`` in-process with ``folder`` as the current folder: exit status 1, one
    line on stderr, no traceback, and nothing made in ``folder``; returns the line."""
    named = {"PHOTO": str(files["photo"]), "CLIP": str(files["clip"])}
    before = set(folder.rglob("*"))
    with contextlib.chdir(folder):
        result = CliRunner().invoke(cli, [named.get(a, a) for a in args], env=env)
    made = sorted(str(p.relative_to(folder)) for p in set(folder.rglob("*")) - before)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    assert made == [], f"{args} made {made}"
    assert result.stdout == "", result.stdout
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize("command", READS_THE_GALLERY, ids=" ".join)
def test_a_command_on_a_missing_gallery_says_so_and_makes_nothing(
    files: dict[str, Path], tmp_path: Path, command: list[str]
) -> None:
    """A typo in --gallery: one line naming the path as given (relative), with the command
    that makes a gallery; no empty gallery, no folder, no output."""
    line = run_in(tmp_path, files, "--gallery", "nope/sub/g.db", *command, env={})
    assert line == "Error: " + NO_GALLERY.format("nope/sub/g.db")


@pytest.mark.parametrize("command", READS_THE_SERVICE_STATE, ids=" ".join)
def test_a_command_on_missing_service_state_says_so_and_makes_nothing(
    files: dict[str, Path], tmp_path: Path, command: list[str]
) -> None:
    line = run_in(tmp_path, files, "--gallery", "nope/sub/g.db", *command, env={})
    assert line == "Error: " + NO_STATE.format("nope/sub/g.db.service/service.db")
    line = run_in(tmp_path, files, *command, "--service-dir", "state", env={})
    assert line == "Error: " + NO_STATE.format("state/service.db")


@pytest.mark.parametrize("command", READS_THE_LIBRARY, ids=" ".join)
def test_a_command_on_a_missing_library_says_so_and_makes_nothing(
    files: dict[str, Path], tmp_path: Path, command: list[str]
) -> None:
    line = run_in(tmp_path, files, "--gallery", "nope/sub/g.db", *command, env={})
    assert line == "Error: " + NO_LIBRARY.format("nope/sub/g.library.db")


def test_the_default_gallery_missing_is_said_and_not_made(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """No --gallery, no $FACELENS_GALLERY: the user data folder's gallery, named in full."""
    data = tmp_path / "xdg"
    env: dict[str, str | None] = {
        "XDG_DATA_HOME": str(data),
        "FACELENS_GALLERY": None,
        "FACELENS_SERVICE_DIR": None,
        "FACELENS_LIBRARY": None,
    }
    default = data / "facelens" / "gallery.db"
    for command in (["people", "list"], ["gallery", "info"], ["identify", "PHOTO"]):
        line = run_in(tmp_path, files, *command, env=env)
        assert line == "Error: " + NO_GALLERY.format(default)
    for command in (["audit"], ["keys", "list"]):
        line = run_in(tmp_path, files, *command, env=env)
        assert line == "Error: " + NO_STATE.format(f"{default}.service/service.db")
    line = run_in(tmp_path, files, "cluster", "show", env=env)
    assert line == "Error: " + NO_LIBRARY.format(data / "facelens" / "gallery.library.db")
    line = run_in(tmp_path, files, "people", "list", env={**env, "FACELENS_GALLERY": "rel/g.db"})
    assert line == "Error: " + NO_GALLERY.format("rel/g.db")
    assert not data.exists()


def test_the_commands_that_write_still_make_the_files_and_folders(tmp_path: Path) -> None:
    """`keys create` makes the service state and its folders; the commands that read it then
    work (an empty gallery made by opening one, too)."""
    state = tmp_path / "nope" / "sub" / "g.db.service" / "service.db"
    runner = CliRunner()
    args = ["--gallery", str(tmp_path / "nope" / "sub" / "g.db")]
    created = runner.invoke(cli, [*args, "keys", "create", "--role", "query", "--json"])
    assert created.exit_code == 0 and state.is_file(), created.output
    listed = runner.invoke(cli, [*args, "keys", "list", "--json"])
    assert listed.exit_code == 0 and '"role": "query"' in listed.stdout, listed.output
    audit = runner.invoke(cli, [*args, "audit", "--json"])
    assert audit.exit_code == 0 and "create_key" in audit.stdout, audit.output
    SQLiteGallery(tmp_path / "nope" / "sub" / "g.db", registry.DEFAULT_EMBEDDER).close()
    people = runner.invoke(cli, [*args, "people", "list", "--json"])
    assert people.exit_code == 0 and people.stdout.strip() == "[]", people.output


def test_audit_since_takes_a_time_and_compares_times(tmp_path: Path) -> None:
    """``--since`` is read as a time (UTC unless zoned), not compared as text: a word is a
    usage error, and a date or a zoned time select entries by time."""
    gallery = tmp_path / "g.db"
    code, text = invoke("keys", "create", "--role", "admin", "--name", "ops", gallery=gallery)
    assert code == 0, text  # the key's creation is the log's first entry
    refused(2, "audit", "--since", "yesterday", gallery=gallery, says=("not a time",))

    def listed(since: str) -> list[dict[str, object]]:
        code, text = invoke("audit", "--since", since, "--json", gallery=gallery)
        assert code == 0, text
        return list(json.loads(text))

    assert listed("2000-01-01") and listed("2000-01-01T00:00+02:00")
    assert listed("2999-12-31") == [] and listed("2999-12-31T23:00-05:00") == []


def test_control_characters_in_a_name_reach_no_terminal(tmp_path: Path) -> None:
    """A file name holding ESC is printed escaped (``\\u001b``), never obeyed; a key name
    holding one is refused."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "bad\x1b[2J.jpg").write_bytes(b"not an image")
    code, text = invoke("detect", folder, gallery=tmp_path / "g.db")
    assert code == 1, text  # the one file could not be read
    assert "\x1b" not in text and "bad\\u001b[2J.jpg" in "".join(text.split()), text
    refused(
        1, "keys", "create", "--role", "query", "--name", "x\x1by",
        gallery=tmp_path / "g.db", says=("control characters",),
    )  # fmt: skip


def test_a_folder_with_nothing_to_read_is_an_error_not_an_empty_success(tmp_path: Path) -> None:
    """Photos without an extension (as Yale's) or an empty folder: the folder is named with
    what was left, and the command exits 1 instead of printing an empty table."""
    folder = tmp_path / "yale"
    folder.mkdir()
    (folder / "subject01.happy").write_bytes(b"GIF89a")
    SQLiteGallery(tmp_path / "g.db", registry.DEFAULT_EMBEDDER).close()  # identify reads one
    for command in (["detect"], ["identify"], ["analyze"]):
        refused(
            1, *command, folder, gallery=tmp_path / "g.db",
            says=("no image in this folder", "its 1 other file(s) were left", "nothing to read"),
        )  # fmt: skip


def test_a_video_that_cannot_be_opened_is_named_once(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """``skipped cut.mp4: <why>``, not ``skipped cut.mp4: cut.mp4: <why>``."""
    cut = tmp_path / "cut.mp4"
    data = files["clip"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # its index is at the end: it cannot be opened
    code, text = invoke("analyze-video", cut, gallery=tmp_path / "g.db")
    assert code == 1, text
    flat = "".join(text.split())  # the console may wrap a long path
    assert flat.count(str(cut)) == 1, text


def test_ingest_refuses_a_mistyped_folder_before_registering_it(tmp_path: Path) -> None:
    """A path that is not there is a typo: refused in one line, and nothing is recorded (it
    was kept as an item that failed in every later run)."""
    scan = tmp_path / "scan.db"
    refused(
        1, "ingest", tmp_path / "nope_dir", "--scan", scan, gallery=tmp_path / "g.db",
        says=(f"no such file or folder: {tmp_path / 'nope_dir'}",),
    )  # fmt: skip
    assert not scan.exists()
