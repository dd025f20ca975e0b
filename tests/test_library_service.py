"""``/api/library`` through the service: roots, scan jobs, groups, naming, appearances, search.

Real photos (a few LFW people) are copied into a library root at test time;
a symlink inside the root leads outside it. The app runs in process with its
job runner; the restart test runs a real ``facelens serve`` and kills it
mid-scan.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from facelens.service.app import create_app
from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB
from tests.conftest import data_path

PEOPLE = ("Albert_Costa", "Angela_Bassett", "Benjamin_Netanyahu")


def _photos(root: Path, people: tuple[str, ...] = PEOPLE, per_person: int = 5) -> Path:
    lfw = data_path("lfw/images_deepfunneled")
    folder = root / "photos"
    for person in people:
        (folder / person).mkdir(parents=True)
        for photo in sorted((lfw / person).glob("*.jpg"))[:per_person]:
            shutil.copy(photo, folder / person / photo.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    return folder


def _keys(settings: ServiceSettings) -> dict[str, str]:
    state = StateDB(settings.state_db)
    store = KeyStore(state)
    keys = {role: store.create(role, role)[1] for role in ("query", "enroll", "admin")}
    state.close()
    return keys


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Path, Path]]:
    roots = tmp_path / "root"
    folder = _photos(roots)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(next((folder / PEOPLE[0]).glob("*.jpg")), outside / "secret.jpg")
    (folder / "leak.jpg").symlink_to(outside / "secret.jpg")
    (roots / "escape").symlink_to(outside, target_is_directory=True)
    settings = ServiceSettings(
        gallery=str(tmp_path / "people.db"), library_roots=[str(roots)], analysis_slots=1
    )
    keys = _keys(settings)
    headers = {role: {"X-API-Key": key} for role, key in keys.items()}
    with TestClient(create_app(settings)) as client:
        yield client, headers, roots, outside


def _finished(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(1200):
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish")


def _scan(client: TestClient, headers: dict[str, str], folder: str) -> dict[str, Any]:
    started = client.post("/api/library/scan", json={"folder": folder}, headers=headers)
    assert started.status_code == 202, started.text
    return _finished(client, headers, started.json()["job"])


def test_a_scan_reads_only_inside_the_library_roots(
    setup: tuple[TestClient, dict[str, dict[str, str]], Path, Path],
) -> None:
    client, headers, roots, outside = setup
    enroll = headers["enroll"]
    relative_out = ("../outside", "escape", "../")  # relative to the root: out of it too
    for folder in (
        str(outside),
        str(roots / "escape"),
        str(roots / ".." / "outside"),
        *relative_out,
    ):
        refused = client.post("/api/library/scan", json={"folder": folder}, headers=enroll)
        assert refused.status_code == 403, folder
        message = refused.json()["error"]["message"]
        assert folder in message
        if folder != str(outside):
            assert str(outside) not in message  # never the resolved server path
    missing = client.post("/api/library/scan", json={"folder": "nowhere"}, headers=enroll)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "nowhere: no such folder in the library folder"
    by_query = client.post("/api/library/scan", json={"folder": "photos"}, headers=headers["query"])
    assert by_query.status_code == 403

    job = _scan(client, enroll, "photos")
    assert job["state"] == "done", job
    summary = job["result"]["summary"]
    failed = {f["source"]: f["error"] for f in summary["failures"]}
    assert set(failed) == {str(roots / "photos" / "broken.jpg"), str(roots / "photos" / "leak.jpg")}
    assert "outside" in failed[str(roots / "photos" / "leak.jpg")]
    assert summary["processed"] == 3 * 5 + 1 and summary["faces"] >= 3 * 5
    again = _scan(client, enroll, str(roots / "photos"))
    assert again["result"]["summary"]["processed"] == 0  # incremental


def test_groups_names_appearances_undo_and_search(
    setup: tuple[TestClient, dict[str, dict[str, str]], Path, Path],
) -> None:
    client, headers, _, _ = setup
    query, enroll = headers["query"], headers["enroll"]
    _scan(client, enroll, "photos")
    page = client.get("/api/library/groups", params={"limit": 2}, headers=query)
    assert page.status_code == 200
    groups = page.json()
    total = int(page.headers["X-Total-Count"])
    assert total >= 3 and len(groups) == 2 and groups[0]["faces"] >= groups[1]["faces"]
    crop = client.get(groups[0]["samples"][0]["crop_url"], headers=query)
    assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    first = client.get(f"/api/library/groups/{groups[0]['id']}", headers=query).json()
    person = Path(first["faces"][0]["source"]).parent.name

    refused = client.post(
        f"/api/library/groups/{groups[0]['id']}/name",
        json={"name": "bad\u0007name"},
        headers=enroll,
    )
    by_people = client.post(
        "/api/people",
        data={"name": "bad\u0007name"},
        files={"photos": ("a.jpg", b"x")},
        headers=enroll,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == by_people.json()["error"]["message"]

    # Two namings of one group at once end with one consistent result.
    answers: list[httpx.Response] = []

    def name(who: str) -> None:
        answers.append(
            client.post(
                f"/api/library/groups/{groups[0]['id']}/name", json={"name": who}, headers=enroll
            )
        )

    threads = [threading.Thread(target=name, args=(who,)) for who in ("Ann", "Bea")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The first name stands; the second is refused (409) rather than renaming the first's.
    assert sorted(a.status_code for a in answers) == [200, 409]
    won = next(a for a in answers if a.status_code == 200).json()["name"]
    lost = next(a for a in answers if a.status_code == 409).json()["error"]
    assert lost["code"] == "bad_correction" and f"named {won!r} meanwhile" in lost["message"]
    named = client.get(f"/api/library/groups/{groups[0]['id']}", headers=query).json()["name"]
    assert named == won
    people = {p["name"] for p in client.get("/api/people", headers=query).json()}
    assert {"Ann", "Bea"} & people == {won}
    again = client.post(
        f"/api/library/groups/{groups[0]['id']}/name", json={"name": won}, headers=enroll
    )
    assert again.status_code == 200  # the same name twice is no conflict
    found = client.get(f"/api/people/{named}/appearances", headers=query)
    assert found.status_code == 200
    shown = found.json()
    assert len(shown) >= len(first["faces"])
    assert all(person in a["source"] and a["time"] is None for a in shown)

    wrong = shown[0]["face"]
    rejected = client.post(f"/api/people/{named}/appearances/{wrong}/reject", headers=enroll)
    assert rejected.status_code == 200
    after = client.get(f"/api/people/{named}/appearances", headers=query).json()
    assert wrong not in {a["face"] for a in after}
    undone = client.post("/api/library/undo", headers=enroll)
    assert undone.json()["undone"] == "not_person"
    restored = client.get(f"/api/people/{named}/appearances", headers=query).json()
    assert wrong in {a["face"] for a in restored}

    hidden = client.post(f"/api/library/groups/{groups[1]['id']}/hide", json={}, headers=enroll)
    assert hidden.status_code == 200
    listed = client.get("/api/library/groups", params={"limit": 50}, headers=query).json()
    assert groups[1]["id"] not in {g["id"] for g in listed}
    assert all(g["looks_like"] is None for g in listed)  # nobody but the named group's person

    # Once its person is enrolled from a photo of their own, the group says who it looks like.
    source = client.get(f"/api/library/groups/{groups[1]['id']}", headers=query).json()
    whose = next(p for p in PEOPLE if p in source["faces"][0]["source"])
    own = sorted((data_path("lfw/images_deepfunneled") / whose).glob("*.jpg"))[-1]
    made = client.post(
        "/api/people",
        data={"name": "Own Photo", "face": "largest"},
        files={"photos": (own.name, own.read_bytes(), "image/jpeg")},
        headers=enroll,
    )
    assert made.status_code == 201, made.text
    hidden_now = client.get("/api/library/groups", params={"hidden": True}, headers=query).json()
    looks = next(g for g in hidden_now if g["id"] == groups[1]["id"])["looks_like"]
    assert looks["name"] == "Own Photo" and 2 * looks["faces"] >= looks["of"] >= 1, looks
    # Named after someone else it is refused, as a photo of theirs would be, unless forced.
    naming = f"/api/library/groups/{groups[1]['id']}/name"
    other = client.post(naming, json={"name": "Someone Else"}, headers=enroll)
    assert other.status_code == 409 and other.json()["error"]["code"] == "matches_other_person"
    assert "looks like 'Own Photo'" in other.json()["error"]["message"]
    forced = client.post(naming, json={"name": "Someone Else", "force": True}, headers=enroll)
    assert forced.status_code == 200, forced.text
    assert client.post("/api/library/undo", headers=enroll).json()["undone"] == "name"

    probe = sorted((data_path("lfw/images_deepfunneled") / person).glob("*.jpg"))[-1]
    searched = client.post(
        "/api/library/search",
        files={"photo": (probe.name, probe.read_bytes(), "image/jpeg")},
        headers=query,
    )
    assert searched.status_code == 200, searched.text
    hits = [a for a in searched.json()["appearances"] if a["match"]]
    assert hits and all(person in a["source"] for a in hits)
    assert {"score", "llr", "score_fmr"} <= set(hits[0])

    # Renaming the person keeps their appearances and what was said about them.
    assert client.post(f"/api/people/{named}/appearances/{wrong}/reject", headers=enroll).is_success
    before = {
        a["face"] for a in client.get(f"/api/people/{named}/appearances", headers=query).json()
    }
    renamed = client.patch(f"/api/people/{named}", json={"name": "Renamed Person"}, headers=enroll)
    assert renamed.status_code == 200, renamed.text
    moved = client.get("/api/people/Renamed Person/appearances", headers=query).json()
    assert {a["face"] for a in moved} == before and wrong not in before
    group = client.get(f"/api/library/groups/{groups[0]['id']}", headers=query).json()
    assert group["name"] == "Renamed Person"
    assert client.get(f"/api/people/{named}/appearances", headers=query).status_code == 404


def test_move_faces_to_a_person_and_split_a_group_through_the_api(
    setup: tuple[TestClient, dict[str, dict[str, str]], Path, Path],
) -> None:
    """``POST /api/library/faces/name`` and ``/groups/{id}/split``: enroll role, the gallery's
    name rule, 409 for a split that leaves nothing, undo."""
    client, headers, _, _ = setup
    query, enroll = headers["query"], headers["enroll"]
    _scan(client, enroll, "photos")
    groups = client.get("/api/library/groups", params={"limit": 3}, headers=query).json()
    first, second = (
        client.get(f"/api/library/groups/{g['id']}", headers=query).json() for g in groups[:2]
    )
    assert client.post(
        f"/api/library/groups/{first['id']}/name", json={"name": "Ann"}, headers=enroll
    ).is_success
    wrong = second["faces"][-1]["face"]
    body = {"faces": [wrong], "name": "Ann"}
    assert client.post("/api/library/faces/name", json=body, headers=query).status_code == 403
    refused = client.post(
        "/api/library/faces/name", json={"faces": [wrong], "name": "a/b"}, headers=enroll
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_name"
    moved = client.post("/api/library/faces/name", json=body, headers=enroll)
    assert moved.status_code == 200, moved.text
    assert moved.json()["group"] == first["id"]
    ann = client.get("/api/people/Ann/appearances", headers=query).json()
    assert wrong in {a["face"] for a in ann}
    assert client.post("/api/library/undo", headers=enroll).json()["undone"] == "move"
    ann = client.get("/api/people/Ann/appearances", headers=query).json()
    assert wrong not in {a["face"] for a in ann if a["how"] == "linked"}

    faces = [f["face"] for f in second["faces"]]
    split = f"/api/library/groups/{second['id']}/split"
    assert client.post(split, json={"faces": faces[:1]}, headers=query).status_code == 403
    whole = client.post(split, json={"faces": faces}, headers=enroll)
    assert whole.status_code == 409 and whole.json()["error"]["code"] == "bad_correction"
    answer = client.post(split, json={"faces": faces[:1]}, headers=enroll)
    assert answer.status_code == 200, answer.text
    new = answer.json()["new_group"]
    detail = client.get(f"/api/library/groups/{new}", headers=query).json()
    assert [f["face"] for f in detail["faces"]] == faces[:1]
    assert client.post("/api/library/undo", headers=enroll).json()["undone"] == "split"
    back = client.get(f"/api/library/groups/{second['id']}", headers=query).json()
    assert sorted(f["face"] for f in back["faces"]) == sorted(faces)


def test_the_library_api_is_in_the_openapi_schema(
    setup: tuple[TestClient, dict[str, dict[str, str]], Path, Path],
) -> None:
    client = setup[0]
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/library/scan",
        "/api/library/scan/upload",
        "/api/library/groups",
        "/api/library/groups/{group_id}/name",
        "/api/library/faces/{face_id}/crop",
        "/api/people/{name}/appearances",
        "/api/library/search",
        "/api/library/undo",
        "/api/library/faces/name",
        "/api/library/groups/{group_id}/split",
    ):
        assert path in paths, path
    groups = paths["/api/library/groups"]["get"]["responses"]["200"]
    assert "GroupSummary" in str(groups)
    body = client.get("/openapi.json").json()["components"]["schemas"]["FacesToPersonRequest"]
    assert "pattern" in body["properties"]["name"]


@pytest.mark.slow
def test_a_scan_survives_a_server_crash_and_resumes(tmp_path: Path) -> None:
    roots = tmp_path / "root"
    folder = _photos(roots, ("Albert_Costa", "Angela_Bassett", "Bob_Graham"), 6)
    photos = len(list(folder.rglob("*_0*.jpg")))
    gallery = tmp_path / "people.db"
    keys = _keys(ServiceSettings(gallery=str(gallery)))
    args = ["--library-root", str(roots), "--threads", "1"]
    first = ServerProcess(gallery, extra_args=args, log_path=tmp_path / "a.log")
    with (
        first as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": keys["enroll"]}) as http,
    ):
        job_id = http.post("/api/library/scan", json={"folder": "photos"}).json()["job"]
        for _ in range(600):
            job = http.get(f"/api/jobs/{job_id}").json()
            if job["state"] == "running" and job["progress"] > 0.1:
                break
            time.sleep(0.1)
        server.kill()  # a crash in the middle of the scan
    second = ServerProcess(gallery, extra_args=args, log_path=tmp_path / "b.log")
    with (
        second as server,
        httpx.Client(
            base_url=server.url, headers={"X-API-Key": keys["enroll"]}, timeout=60
        ) as http,
    ):
        for _ in range(1200):
            job = http.get(f"/api/jobs/{job_id}").json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.25)
        assert job["state"] == "done", job
        assert job["attempts"] == 2
        stats = http.get("/api/library").json()
        assert (stats["pending"], stats["done"], stats["failed"]) == (0, photos, 1)


def test_an_uploaded_zip_unpacks_only_photos_and_videos_within_their_limits(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    """A small zip of a huge "photo" (zeros compress 1000 to 1) must not fill the disk: a member
    over its kind's limit stays packed, as does a member that is no photo or video (its path
    climbing out of the folder), and the scan's report names both."""
    import io
    import zipfile

    from PIL import Image

    photo = io.BytesIO()
    Image.fromarray(astronaut).save(photo, format="JPEG", quality=90)
    astronaut_jpeg = photo.getvalue()
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"), max_request_bytes=1 << 20)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("astronaut.jpg", astronaut_jpeg)
        archive.writestr("big.jpg", bytes(8 << 20))
        archive.writestr("../../pwned.txt", b"outside?")
    assert len(packed.getvalue()) < 100_000
    headers = {"X-API-Key": _keys(settings)["enroll"]}
    with TestClient(create_app(settings)) as client:
        started = client.post(
            "/api/library/scan/upload",
            files={"file": ("photos.zip", packed.getvalue(), "application/zip")},
            headers=headers,
        )
        assert started.status_code == 202, started.text
        job = _finished(client, headers, started.json()["job"])
    assert job["state"] == "done", job
    summary = job["result"]["summary"]
    failed = {f["source"].rsplit("/", 1)[-1]: f["error"] for f in summary["failures"]}
    assert failed.keys() == {"big.jpg", "pwned.txt"}, failed
    assert "8,388,608 bytes; the limit is 1,048,576" in failed["big.jpg"]
    assert "not a photo or video" in failed["pwned.txt"]
    assert summary["processed"] == 1 and summary["faces"] >= 1
    unpacked = [p for p in settings.state_dir.rglob("*") if p.is_file() and "upload" in str(p)]
    assert not any(p.name.endswith(("big.jpg", "pwned.txt")) for p in unpacked)
    assert sum(p.stat().st_size for p in unpacked) < 2 << 20
    assert not list(tmp_path.rglob("pwned.txt"))
