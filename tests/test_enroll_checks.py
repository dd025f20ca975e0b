"""Issue 13, items 1, 6, 7, 8: one name rule everywhere, every person reachable by the name
given, and enrollment refusing duplicates and other people's faces (real photos).

The name rule and its refusals always run; the enrollment checks use the Obama and Biden
photos of the shared data (skipped when absent).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facelens import FaceLens
from facelens.apps.enroll import DUPLICATE, MATCHES_OTHER_PERSON
from facelens.errors import InvalidNameError, PersonNotFoundError
from facelens.gallery.store import clean_name
from facelens.service.app import create_app
from facelens.service.settings import ServiceSettings
from tests.test_cli import run, run_json
from tests.test_service import assert_error, auth, make_keys

# name given -> the code point its refusal names
REFUSED = {
    "line1\nline2": "U+000A",
    "tab\there": "U+0009",
    "clear\x1b[2Jscreen": "U+001B",
    "gpj.\u202eexe": "U+202E",  # RIGHT-TO-LEFT OVERRIDE
    "iso\u2066late": "U+2066",  # LEFT-TO-RIGHT ISOLATE
    "mark\u200fed": "U+200F",  # RIGHT-TO-LEFT MARK
    "para\u2029graph": "U+2029",
    "nul\x00": "U+0000",
}


@pytest.mark.parametrize(("name", "code_point"), REFUSED.items())
def test_the_name_rule_refuses_control_and_bidi_characters_by_code_point(
    name: str, code_point: str
) -> None:
    with pytest.raises(InvalidNameError, match=re.escape(code_point)):
        clean_name(name)


@pytest.mark.parametrize("name", ["a/b", "/", ".", "..", "  ..  ", "", " \u00a0 ", "x" * 201])
def test_the_name_rule_refuses_what_cannot_be_a_url_segment_or_is_empty(name: str) -> None:
    with pytest.raises(InvalidNameError):
        clean_name(name)


def test_the_name_rule_normalises() -> None:
    assert clean_name("  Ada \u00a0  Lovelace ") == "Ada Lovelace"  # no-break space collapsed
    assert clean_name("Rene\u0301") == "Ren\u00e9"  # NFC: e + combining acute -> é
    assert clean_name("李 小龍") == "李 小龍" and clean_name("Zoë #1 (ok?)") == "Zoë #1 (ok?)"


def _insert_legacy(location: str, name: str) -> None:
    """A person stored by an older version, which kept any name as given."""
    if location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute("INSERT INTO facelens.people (name) VALUES (%s)", (name,))
    else:
        with sqlite3.connect(location) as db:
            db.execute(
                "INSERT INTO people (name, created_at) VALUES (?, '2024-01-01T00:00:00Z')", (name,)
            )


def test_every_person_is_reached_by_the_name_given(gallery_location: str) -> None:
    with FaceLens(gallery=gallery_location) as lens:
        gallery = lens.gallery
        assert gallery.add_person("Rene\u0301  Magritte").name == "Ren\u00e9 Magritte"
        assert gallery.get_person("Rene\u0301 Magritte").name == "Ren\u00e9 Magritte"
        assert gallery.get_person(" Ren\u00e9\tMagritte ").name == "Ren\u00e9 Magritte"
        for bad in REFUSED:
            with pytest.raises(InvalidNameError):
                gallery.add_person(bad)
            with pytest.raises(InvalidNameError):
                lens.rename("Ren\u00e9 Magritte", bad)
        assert [p.name for p in lens.people()] == ["Ren\u00e9 Magritte"]
        for legacy in ["line1 line2", "a/b", "esc\x1b[2J"]:  # stored before the rule
            _insert_legacy(gallery_location, legacy)
        assert gallery.get_person("line1\nline2").name == "line1 line2"  # as it was first given
        assert lens.rename("a/b", "a-b").name == "a-b"
        assert lens.erase("esc\x1b[2J") == 0
        assert lens.erase("line1\nline2") == 0
        with pytest.raises(PersonNotFoundError):
            gallery.get_person("esc\x1b[2J")
        assert sorted(p.name for p in lens.people()) == ["Ren\u00e9 Magritte", "a-b"]


# --- the command line -----------------------------------------------------------------------


def test_cli_refuses_bad_names_and_prints_old_ones_escaped(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    for name, code_point in REFUSED.items():
        if "\x00" in name:
            continue  # no argv can hold NUL
        result = run("enroll", name, tmp_path, gallery=gallery, check=False)
        assert result.returncode == 1 and code_point in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    result = run("people", "rename", "x", "a/b", gallery=gallery, check=False)
    assert result.returncode == 1 and "'/'" in result.stderr
    with FaceLens(gallery=gallery) as lens:
        lens.gallery.add_person("Ada [bold]Lovelace[red]")
    for legacy in ["esc\x1b[2J\x1b[H", "evil\u202etxt.exe", "a/b"]:
        _insert_legacy(str(gallery), legacy)
    listing = run("people", "list", gallery=gallery).stdout
    assert "\x1b" not in listing and "\u202e" not in listing
    assert "esc\\u001b[2J\\u001b[H" in listing and "evil\\u202etxt.exe" in listing
    assert "Ada [bold]Lovelace[red]" in listing  # a name, not markup
    run("people", "remove", "a/b", gallery=gallery)  # the CLI erases what the API cannot reach
    run("people", "remove", "esc\x1b[2J\x1b[H", gallery=gallery)
    names = [p["name"] for p in run_json("people", "list", gallery=gallery)]
    assert names == ["Ada [bold]Lovelace[red]", "evil\u202etxt.exe"]


def test_cli_enroll_exits_1_when_any_photo_is_rejected(knn_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a_obama.jpg").write_bytes((knn_root / "train/obama/obama.jpg").read_bytes())
    (folder / "b_empty.jpg").write_bytes(b"")
    (folder / "c_notes.png").write_text("not an image")
    bomb = folder / "d_bomb.png"
    Image.new("L", (1, 1)).save(bomb)
    data = bytearray(bomb.read_bytes())  # claim 60000 x 60000 pixels in the header
    data[16:24] = (60000).to_bytes(4, "big") * 2
    bomb.write_bytes(bytes(data))
    gallery = tmp_path / "g.db"
    result = run("enroll", "obama", folder, "--json", gallery=gallery, check=False)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    photos = {Path(p["source"]).name: p for p in report["photos"]}
    assert list(photos) == ["a_obama.jpg", "b_empty.jpg", "c_notes.png", "d_bomb.png"]
    assert photos["a_obama.jpg"]["accepted"] and report["templates"] == 1
    assert not any(photos[n]["accepted"] for n in ["b_empty.jpg", "c_notes.png", "d_bomb.png"])
    assert all(photos[n]["reason"] for n in ["b_empty.jpg", "c_notes.png", "d_bomb.png"])
    table = run("enroll", "obama", knn_root / "train/obama/obama2.jpg", gallery=gallery)
    assert table.returncode == 0 and "1 added, 0 rejected, 2 in the gallery" in table.stderr


def test_cli_refuses_duplicates_and_other_peoples_faces_unless_forced(
    knn_root: Path, tmp_path: Path
) -> None:
    train = knn_root / "train"
    gallery = tmp_path / "g.db"
    run("enroll", "biden", train / "biden/biden.jpg", gallery=gallery)
    run("enroll", "obama", train / "obama/obama.jpg", gallery=gallery)
    again = run(
        "enroll", "obama", train / "obama/obama.jpg", "--json", gallery=gallery, check=False
    )
    assert again.returncode == 1
    assert json.loads(again.stdout)["photos"][0]["code"] == DUPLICATE
    mixed = run(
        "enroll",
        "obama",
        train / "biden/biden2.jpg",
        train / "obama/obama2.jpg",
        "--json",
        gallery=gallery,
        check=False,
    )
    assert mixed.returncode == 1 and "--force" in mixed.stderr
    biden2, obama2 = json.loads(mixed.stdout)["photos"]
    assert biden2["code"] == MATCHES_OTHER_PERSON and not biden2["accepted"]
    assert biden2["matches"]["name"] == "biden" and biden2["matches"]["score"] > 0.85
    assert obama2["accepted"]  # one held-back photo does not sink the others
    counts = {p["name"]: p["templates"] for p in run_json("people", "list", gallery=gallery)}
    assert counts == {"biden": 1, "obama": 2}
    run("enroll", "obama", train / "biden/biden2.jpg", "--force", gallery=gallery)
    counts = {p["name"]: p["templates"] for p in run_json("people", "list", gallery=gallery)}
    assert counts == {"biden": 1, "obama": 3}


# --- the Python API -------------------------------------------------------------------------


def test_python_enroll_screens_duplicates_and_lookalikes(knn_root: Path, tmp_path: Path) -> None:
    train = knn_root / "train"
    obama = np.asarray(Image.open(train / "obama/obama.jpg").convert("RGB"))
    with FaceLens(gallery=tmp_path / "g.db") as lens:
        first = lens.enroll("Barack Obama", [obama, obama.copy()])  # the same photo twice
        assert [o.code for o in first.outcomes] == [None, DUPLICATE]
        assert lens.enroll("Joe Biden", [train / "biden/biden.jpg"]).person is not None
        held = lens.enroll("Barack Obama", [train / "biden/biden2.jpg"])
        assert held.conflicts and held.conflicts[0].match is not None
        assert held.conflicts[0].match.name == "Joe Biden"
        assert lens.gallery.get_person("Barack Obama").templates == 1
        # a new name for an enrolled face is held back too
        assert lens.enroll("Joseph", [train / "biden/biden2.jpg"]).conflicts
        with pytest.raises(PersonNotFoundError):
            lens.gallery.get_person("Joseph")
        forced = lens.enroll("Barack Obama", [train / "biden/biden2.jpg"], force=True)
        assert forced.accepted and forced.accepted[0].match is not None  # saved, with its match
        dup = lens.enroll("Joe Biden", [train / "biden/biden2.jpg"], force=True)
        assert dup.outcomes[0].code == DUPLICATE  # a duplicate is never forced in
        assert lens.gallery.get_person("Barack Obama").templates == 2


# --- the service ----------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"))
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as client:
        yield client, auth(keys["admin"])


def _photos(*paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def test_service_applies_the_same_name_rule(
    service: tuple[TestClient, dict[str, str]], knn_root: Path, tmp_path: Path
) -> None:
    client, headers = service
    photo = knn_root / "train/obama/obama.jpg"
    for name, code_point in [*REFUSED.items(), ("a/b", "'/'"), ("..", "'..'")]:
        error = assert_error(
            client.post("/api/people", data={"name": name}, files=_photos(photo), headers=headers),
            422,
            "invalid_name",
        )
        assert code_point in error["message"]
        with pytest.raises(InvalidNameError) as raised:
            clean_name(name)
        assert error["message"] == str(raised.value)  # the same words as the CLI and Python
    assert client.get("/api/people", headers=headers).json() == []
    made = client.post(
        "/api/people", data={"name": "Rene\u0301  Magritte"}, files=_photos(photo), headers=headers
    )
    assert made.status_code == 201 and made.json()["person"]["name"] == "Ren\u00e9 Magritte"
    assert client.get("/api/people/Rene\u0301 Magritte", headers=headers).status_code == 200
    renamed = client.patch(
        "/api/people/Ren\u00e9 Magritte", json={"name": "esc\x1b"}, headers=headers
    )
    assert_error(renamed, 422, "invalid_name")
    assert client.delete("/api/people/Rene\u0301 Magritte", headers=headers).status_code == 200


def test_service_409_for_another_persons_face_unless_forced(
    service: tuple[TestClient, dict[str, str]], knn_root: Path
) -> None:
    client, headers = service
    train = knn_root / "train"

    def enroll(name: str, *photos: Path, **form: Any) -> Any:
        return client.post(
            "/api/people", data={"name": name, **form}, files=_photos(*photos), headers=headers
        )

    assert enroll("Joe Biden", train / "biden/biden.jpg").status_code == 201
    assert enroll("Barack Obama", train / "obama/obama.jpg").status_code == 201
    error = assert_error(
        enroll("Barack Obama", train / "biden/biden2.jpg", train / "obama/obama2.jpg"),
        409,
        MATCHES_OTHER_PERSON,
    )
    held, fine = error["details"]["photos"]
    assert held["code"] == MATCHES_OTHER_PERSON and held["matches"]["name"] == "Joe Biden"
    assert fine["code"] is None and "Joe Biden" in error["message"]
    person = client.get("/api/people/Barack Obama", headers=headers).json()
    assert person["templates"] == 1  # nothing was saved, not even the good photo
    added = client.post(
        "/api/people/Barack Obama/photos",
        data={"force": "true"},
        files=_photos(train / "biden/biden2.jpg", train / "obama/obama2.jpg"),
        headers=headers,
    )
    assert added.status_code == 201 and added.json()["accepted"] == 2, added.text
    # every photo already there: a conflict with the gallery's state (409), not a bad request
    duplicate = assert_error(enroll("Barack Obama", train / "obama/obama2.jpg"), 409)
    assert duplicate["code"] == "duplicate_photo"
    assert duplicate["details"]["photos"][0]["code"] == DUPLICATE
    # someone else's photo sent under a new name: the message says whose it is
    theirs = assert_error(enroll("Not Biden", train / "biden/biden.jpg"), 409)
    assert theirs["code"] == "duplicate_photo"
    assert "(enrolled for 'Joe Biden')" in theirs["message"], theirs["message"]


def test_ingest_refuses_a_folder_name_for_that_photo_only(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    from facelens.gallery import SQLiteGallery
    from facelens.ingest.process import ProcessOptions
    from facelens.ingest.run import LocalExecutor, enroll_result
    from facelens.ingest.sources import expand_sources
    from facelens.models import registry

    folder = tmp_path / "bad\x1bname"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "a.jpg")
    model = registry.DEFAULT_EMBEDDER
    options = ProcessOptions(model, registry.DEFAULT_DETECTOR, target="gallery", threads=2)
    found = LocalExecutor(options).processor.run([(expand_sources([folder])[0], None)])[0]
    assert found.error is None and found.count == 1
    gallery = SQLiteGallery(tmp_path / "g.db", model)
    try:
        result = enroll_result(gallery, found)  # an error for this item, not an exception
        assert result.error is not None and "U+001B" in result.error
        assert result.vectors.size == 0 and gallery.list_people() == []
    finally:
        gallery.close()


# --- picking the face of a photo with several (--face, face=) --------------------------------


def _obama_and_biden_centres(lens: FaceLens, photo: Path) -> tuple[list[float], list[float]]:
    """The box centres (x, y in the photo's pixels) of Obama's and of Biden's face in the
    two-person photo, told apart by a gallery holding Obama's portrait alone."""
    matches = lens.identify(photo)
    usable = [m for m in matches if m.face.quality.usable]
    assert len(usable) == 2, [m.face.box for m in matches]
    obama = [m for m in usable if m.identity == "obama"]
    other = [m for m in usable if m.identity is None]
    assert len(obama) == 1 and len(other) == 1
    return list(obama[0].face.box.center), list(other[0].face.box.center)


def test_a_point_picks_the_face_to_enroll_in_a_group_photo(knn_root: Path, tmp_path: Path) -> None:
    photo = knn_root / "test/obama_and_biden.jpg"
    with FaceLens(gallery=tmp_path / "g.db") as lens:
        lens.enroll("obama", [knn_root / "train/obama/obama.jpg"])
        obama_at, biden_at = _obama_and_biden_centres(lens, photo)
        refused = lens.enroll("joe", [photo])  # two usable faces and no choice
        assert refused.outcomes[0].code == "multiple_faces"
        assert "2 faces found" in (refused.outcomes[0].reason or "")
        missed = lens.enroll("joe", [photo], face="5,5")
        assert missed.outcomes[0].code == "no_face"
        assert "no face at (5, 5)" in (missed.outcomes[0].reason or "")
        # Obama's face under another name is held back, as any photo of an enrolled person
        wrong = lens.enroll("joe", [photo], face=f"{obama_at[0]:.1f},{obama_at[1]:.1f}")
        assert wrong.outcomes[0].code == MATCHES_OTHER_PERSON
        picked = lens.enroll("joe", [photo], face=f"{biden_at[0]:.1f},{biden_at[1]:.1f}")
        assert picked.accepted, picked.outcomes
        # the face saved is Biden's: his own portrait is now identified as "joe"
        (match,) = lens.identify(knn_root / "train/biden/biden.jpg")
        assert match.identity == "joe"


def test_cli_face_option_and_its_refusals(knn_root: Path, tmp_path: Path) -> None:
    photo = knn_root / "test/obama_and_biden.jpg"
    gallery = tmp_path / "g.db"
    plain = run("enroll", "joe", photo, gallery=gallery, check=False)
    assert plain.returncode == 1 and "--face largest" in plain.stderr
    bad = run("enroll", "joe", photo, "--face", "left", gallery=gallery, check=False)
    assert bad.returncode == 2 and "'left' is not a face choice" in bad.stderr
    largest = run_json("enroll", "joe", photo, "--face", "largest", gallery=gallery)
    assert largest["photos"][0]["accepted"] and largest["templates"] == 1
    # the largest usable face is the one saved: enrolling it again is a duplicate
    with FaceLens(gallery=tmp_path / "other.db") as lens:
        faces = [f for f in lens.detect(photo) if f.quality.usable]
    x, y = max(faces, key=lambda f: f.box.area).box.center
    again = run(
        "enroll", "joe", photo, "--face", f"{x:.0f},{y:.0f}", "--json", gallery=gallery, check=False
    )
    assert again.returncode == 1 and json.loads(again.stdout)["photos"][0]["code"] == DUPLICATE


def test_ingest_into_the_gallery_takes_the_largest_face_when_told(
    knn_root: Path, tmp_path: Path
) -> None:
    """``ingest --into-gallery`` refuses a group photo by default (listed, exit 1) and with
    ``--face largest`` enrolls its largest usable face under the folder's name."""
    folder = tmp_path / "photos" / "joe"
    folder.mkdir(parents=True)
    shutil.copy(knn_root / "test/obama_and_biden.jpg", folder / "group.jpg")
    gallery = tmp_path / "g.db"
    ingest = ("ingest", folder.parent, "--into-gallery", "--json")
    plain = run(*ingest, "--scan", tmp_path / "plain.db", gallery=gallery, check=False)
    assert plain.returncode == 1, plain.stderr
    (failure,) = json.loads(plain.stdout)["failures"]
    assert failure["source"].endswith("group.jpg") and "2 faces found" in failure["error"]
    assert "1 photo(s) hold several usable faces" in plain.stderr
    assert "--face largest" in plain.stderr
    largest = run(*ingest, "--face", "largest", "--scan", tmp_path / "s.db", gallery=gallery)
    assert json.loads(largest.stdout)["failures"] == []
    with FaceLens(gallery=gallery) as lens:
        assert len(lens.gallery.list_templates("joe")) == 1
        matches = [m for m in lens.identify(folder / "group.jpg") if m.face.quality.usable]
    assert len(matches) == 2
    widest = max(matches, key=lambda m: m.face.box.area)
    assert [m.identity for m in matches if m is not widest] == [None]
    assert widest.identity == "joe"  # the largest face is the one enrolled
    scan_only = run("ingest", folder, "--face", "largest", gallery=gallery, check=False)
    assert scan_only.returncode == 2 and "needs --into-gallery" in scan_only.stderr


def test_ingest_into_the_gallery_screens_each_face_as_enroll_does(
    knn_root: Path, tmp_path: Path
) -> None:
    """The same photo under a second folder is a duplicate; another photo of an enrolled
    person under someone else's folder matches them and is refused unless --force."""
    train = knn_root / "train"
    tree = tmp_path / "tree"
    for folder, photo in (("obama", "obama/obama.jpg"), ("zz_copy", "obama/obama.jpg")):
        (tree / folder).mkdir(parents=True)  # read in name order: obama's folder first
        shutil.copy(train / photo, tree / folder / "o.jpg")
    (tree / "powell").mkdir()
    shutil.copy(train / "obama/obama2.jpg", tree / "powell/p.jpg")
    gallery = tmp_path / "g.db"
    first = run("ingest", tree, "--into-gallery", "--scan", tmp_path / "s1.db", "--json",
                gallery=gallery, check=False)  # fmt: skip
    assert first.returncode == 1, first.stderr
    failures = {
        Path(f["source"]).parent.name: f["error"] for f in json.loads(first.stdout)["failures"]
    }
    assert set(failures) == {"zz_copy", "powell"}, failures
    assert "already enrolled for 'obama'" in failures["zz_copy"]  # a duplicate adds nothing
    assert "matches 'obama'" in failures["powell"] and "--force" in failures["powell"]
    with FaceLens(gallery=gallery) as lens:
        assert [p.name for p in lens.gallery.list_people()] == ["obama"]
    forced = run("ingest", tree / "powell", "--into-gallery", "--force", "--scan",
                 tmp_path / "s2.db", "--json", gallery=gallery)  # fmt: skip
    assert json.loads(forced.stdout)["failures"] == []
    with FaceLens(gallery=gallery) as lens:
        assert {p.name for p in lens.gallery.list_people()} == {"obama", "powell"}


def test_service_face_field(service: tuple[TestClient, dict[str, str]], knn_root: Path) -> None:
    client, headers = service
    photo = knn_root / "test/obama_and_biden.jpg"

    def enroll(**form: Any) -> Any:
        return client.post(
            "/api/people", data={"name": "joe", **form}, files=_photos(photo), headers=headers
        )

    plain = assert_error(enroll(), 422, "no_usable_photo")
    assert plain["details"]["photos"][0]["code"] == "multiple_faces"
    assert_error(enroll(face="left"), 422)  # not a choice: refused by the schema
    two = client.post(
        "/api/people",
        data={"name": "joe", "face": "10,10"},
        files=_photos(photo, knn_root / "train/obama/obama.jpg"),
        headers=headers,
    )
    assert "send each photo with its own point" in assert_error(two, 422)["message"]
    made = enroll(face="largest")
    assert made.status_code == 201 and made.json()["accepted"] == 1, made.text
