"""The `facelens` command as a user runs it: a real process, real photos, JSON checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from facelens.gallery import SQLiteGallery
from facelens.models import registry
from tests.conftest import REPO

FACELENS = [sys.executable, "-m", "facelens.cli.main"]


def run(
    *args: str | Path, gallery: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FACELENS_GALLERY=str(gallery) if gallery else "/nonexistent/unused.db")
    result = subprocess.run(
        [*FACELENS, *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def run_json(*args: str | Path, gallery: Path | None = None) -> Any:
    return json.loads(run(*args, "--json", gallery=gallery).stdout)


def empty_gallery(path: Path) -> Path:
    """A gallery file with nobody in it (the commands that read a gallery refuse a missing
    one)."""
    SQLiteGallery(path, registry.DEFAULT_EMBEDDER).close()
    return path


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["detect"],
        ["enroll"],
        ["people"],
        ["people", "remove"],
        ["identify"],
        ["verify"],
        ["eval", "lfw"],
        ["demo"],
        ["models"],
    ],
)
def test_help_everywhere(command: list[str]) -> None:
    assert "Usage:" in run(*command, "--help").stdout


def test_detect_json_and_drawing(group_photos: Path, tmp_path: Path) -> None:
    photo = group_photos / "ageitgey+face_recognition/examples/two_people.jpg"
    records = run_json("detect", photo, "--draw", tmp_path / "drawn")
    assert [r["source"] for r in records] == [str(photo)]
    faces = records[0]["faces"]
    assert len(faces) == 2
    for face in faces:
        assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
        assert all(len(point) == 2 for point in face["landmarks"])
        assert 0.6 <= face["score"] <= 1 and 0 <= face["quality"]["value"] <= 1
    assert (tmp_path / "drawn" / "two_people.jpg").stat().st_size > 10_000


def test_identify_on_a_missing_or_empty_gallery_says_so(knn_root: Path, tmp_path: Path) -> None:
    """No gallery file (a typo in --gallery): refused in one line naming it, and nothing made,
    not even the drawings' folder. Nobody enrolled: every face is unknown, with no score, and
    the command says why; an impossible --top-k or --threshold is refused in one line."""
    gallery, photo, drawn = (
        tmp_path / "sub" / "g.db",
        knn_root / "test" / "obama1.jpg",
        tmp_path / "d",
    )
    missing = run("identify", photo, "--draw", drawn, gallery=gallery, check=False)
    assert missing.returncode == 1 and missing.stdout == "", missing.stdout
    assert missing.stderr.splitlines() == [
        f"Error: there is no gallery at {gallery}; `facelens enroll NAME PHOTO...` makes it"
    ]
    assert list(tmp_path.iterdir()) == []
    # enroll still makes the gallery and its folder; with its only person removed it is empty
    run("enroll", "obama", knn_root / "train" / "obama" / "obama.jpg", gallery=gallery)
    assert gallery.is_file()
    run("people", "remove", "obama", gallery=gallery)
    table = run("identify", photo, "--draw", drawn, gallery=gallery)
    assert "holds nobody yet" in table.stderr and "Traceback" not in table.stderr
    assert "unknown" in table.stdout + table.stderr
    assert (drawn / "obama1.jpg").is_file()
    record = run_json("identify", photo, gallery=gallery)[0]
    assert [(f["identity"], f["score"]) for f in record["faces"]] == [(None, None)]
    refused = run("identify", photo, "--top-k", "0", gallery=gallery, check=False)
    assert refused.returncode == 2 and "--top-k" in refused.stderr
    refused = run("identify", photo, "--threshold", "7", gallery=gallery, check=False)
    assert refused.returncode == 1 and "between -1 and 1" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_folder_without_images_is_named(tmp_path: Path) -> None:
    """Nothing to read is an error that says why: each folder given that holds no image is
    named on stderr, and the command exits 1 with nothing on stdout."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    gallery = empty_gallery(tmp_path / "g.db")
    for command in (["detect"], ["identify"], ["anonymize", "-o", str(tmp_path / "out")]):
        done = run(*command, empty, "--json", gallery=gallery, check=False)
        assert done.returncode == 1 and done.stdout == "", done
        assert f"{empty}: no image" in done.stderr, done.stderr
        assert "nothing to read" in done.stderr, done.stderr


def test_enroll_people_identify_verify_remove(knn_root: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    train = knn_root / "train"
    report = run_json("enroll", "obama", train / "obama", gallery=gallery)
    assert report["templates"] == 2 and all(p["accepted"] for p in report["photos"])
    run("enroll", "biden", train / "biden", gallery=gallery)
    run("enroll", "joe", train / "kit_harington", gallery=gallery)
    run("people", "rename", "joe", "kit_harington", gallery=gallery)
    people = run_json("people", "list", gallery=gallery)
    assert [(p["name"], p["templates"]) for p in people] == [
        ("biden", 2),
        ("kit_harington", 2),
        ("obama", 2),
    ]

    records = run_json("identify", knn_root / "test", "--fmr", "1e-3", gallery=gallery)
    by_name = {Path(r["source"]).name: r for r in records}
    assert len(by_name) == 5  # the folder was walked
    faces = sorted(by_name["obama_and_biden.jpg"]["faces"], key=lambda f: f["box"][0])
    assert [f["identity"] for f in faces] == ["biden", "obama", None]  # and a girl never enrolled
    obama = faces[1]
    assert obama["fmr"] == 1e-3 and obama["score"] >= obama["threshold"]
    assert obama["candidates"][0]["name"] == "obama" and len(obama["candidates"]) == 3
    assert by_name["alex_lacamoire1.jpg"]["faces"][0]["identity"] is None  # never enrolled

    verdict = run_json(
        "verify", train / "obama" / "obama.jpg", knn_root / "test" / "obama1.jpg", gallery=gallery
    )
    assert verdict["same"] is True and verdict["score"] >= verdict["threshold"]
    assert verdict["llr"] > 2 and verdict["score_fmr"] < 1e-5

    templates = run_json("people", "show", "biden", gallery=gallery)
    run("people", "remove", "biden", "--template", str(templates[0]["id"]), gallery=gallery)
    run("people", "remove", "obama", gallery=gallery)
    people = run_json("people", "list", gallery=gallery)
    assert [(p["name"], p["templates"]) for p in people] == [("biden", 1), ("kit_harington", 2)]


def test_bad_files_are_reported_and_the_rest_goes_on(knn_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes((knn_root / "test" / "obama1.jpg").read_bytes())
    (folder / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    (folder / "c_notes.png").write_text("not an image")
    gallery = tmp_path / "g.db"
    run("enroll", "obama", knn_root / "train" / "obama", gallery=gallery)
    result = run("identify", folder, "--json", gallery=gallery, check=False)
    assert result.returncode == 1
    records = json.loads(result.stdout)
    assert [Path(r["source"]).name for r in records] == [
        "a_good.jpg",
        "b_corrupt.jpg",
        "c_notes.png",
    ]
    assert records[0]["faces"][0]["identity"] == "obama"
    assert "error" in records[1] and "error" in records[2]


def test_user_errors_are_one_clear_line(tmp_path: Path) -> None:
    gallery = empty_gallery(tmp_path / "g.db")
    result = run("people", "remove", "nobody", gallery=gallery, check=False)
    assert result.returncode == 1 and "nobody called 'nobody'" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("verify", tmp_path / "missing.jpg", tmp_path / "missing2.jpg", check=False)
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_eval_lfw_on_a_small_pairs_file(lfw_root: Path, tmp_path: Path) -> None:
    """The protocol on any root holding pairs.txt: here 2 folds of 10 + 10 pairs."""
    lines = (lfw_root / "pairs.txt").read_text().splitlines()
    folds = []
    for fold in range(2):
        start = 1 + fold * 600
        folds += lines[start : start + 10] + lines[start + 300 : start + 310]
    (tmp_path / "pairs.txt").write_text("2\t10\n" + "\n".join(folds) + "\n")
    (tmp_path / "pictures").symlink_to(lfw_root / "images_deepfunneled")
    data = run_json("eval", "lfw", tmp_path, "--images", "pictures")
    assert data["folds"] == 2 and data["fallbacks"] == 0
    assert {"accuracy_mean", "accuracy_std", "folds", "fallbacks"} <= set(data)
    assert data["accuracy_mean"] >= 0.9


def test_help_names_the_defaults_the_code_uses() -> None:
    """Help text is made from the constants, so it cannot drift from them (it said SFace)."""
    from click.testing import CliRunner

    from facelens.apps.video.anonymize import DEFAULT_DETECT_EVERY, DEFAULT_HOLD
    from facelens.cli.main import cli
    from facelens.match.calibration import DEFAULT_FMR
    from facelens.models import registry
    from facelens.pipeline.detect import DEFAULT_MAX_SIDE

    def help_of(*command: str) -> str:
        result = CliRunner().invoke(
            cli, [*command, "--help"], terminal_width=400, max_content_width=400
        )
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    top = help_of()
    assert f"else {registry.DEFAULT_EMBEDDER}." in top
    assert registry.DEFAULT_EMBEDDER != registry.SFACE_EMBEDDER and "else SFace" not in top
    assert f"(default {DEFAULT_MAX_SIDE})" in top
    assert f"else {DEFAULT_FMR:g})" in help_of("identify")
    anonymize = help_of("anonymize")
    assert f"(default {DEFAULT_HOLD})" in anonymize
    assert f"default {DEFAULT_DETECT_EVERY})" in anonymize
