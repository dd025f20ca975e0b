"""The REST service in process (the real app, models and gallery): API, keys, audit, limits, jobs.

Live servers in child processes (several workers, restarts, kill -9, fuzzing)
are in ``test_service_live.py`` and ``test_service_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facelens.service.app import create_app
from facelens.service.keys import KeyStore
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB


def jpeg(pixels: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then length + "IHDR"
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13])) & 0xFFFFFFFF
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def make_keys(settings: ServiceSettings) -> dict[str, str]:
    state = StateDB(settings.state_db)
    store = KeyStore(state)
    keys = {role: store.create(f"test {role}", role)[1] for role in ("query", "enroll", "admin")}
    state.close()
    return keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut: np.ndarray) -> bytes:
    return jpeg(astronaut)


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(gallery=str(tmp_path / "people.db"), max_request_bytes=4 * 1024 * 1024)


@pytest.fixture
def keys(settings: ServiceSettings) -> dict[str, str]:
    return make_keys(settings)


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_every_api_route_needs_a_key_of_the_right_role(
    client: TestClient, keys: dict[str, str], astronaut_jpeg: bytes
) -> None:
    photo = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    assert_error(client.post("/api/identify", files=photo), 401, "unauthenticated")
    assert_error(client.get("/api/people"), 401, "unauthenticated")
    assert_error(client.get("/api/people", headers=auth("fl_nothing")), 401, "unauthenticated")
    forged = keys["admin"][:-4] + "AAAA"
    assert_error(client.get("/api/people", headers=auth(forged)), 401, "unauthenticated")

    query, enroll, admin = keys["query"], keys["enroll"], keys["admin"]
    assert client.post("/api/identify", files=photo, headers=auth(query)).status_code == 200
    enrolment = {"photos": ("astro.jpg", astronaut_jpeg, "image/jpeg")}
    assert_error(
        client.post("/api/people", data={"name": "Eileen"}, files=enrolment, headers=auth(query)),
        403,
        "forbidden",
    )
    created = client.post(
        "/api/people", data={"name": "Eileen"}, files=enrolment, headers={"X-API-Key": enroll}
    )
    assert created.status_code == 201, created.text
    assert_error(client.delete("/api/people/Eileen", headers=auth(enroll)), 403, "forbidden")
    assert_error(client.get("/api/audit", headers=auth(enroll)), 403, "forbidden")
    assert client.delete("/api/people/Eileen", headers=auth(admin)).status_code == 200

    # Revocation takes effect on the next request.
    state = StateDB(Path(client.app.state.service.settings.state_db))  # type: ignore[attr-defined]
    store = KeyStore(state)
    query_id = query.split("_")[1]
    store.revoke(query_id)
    state.close()
    assert_error(client.get("/api/people", headers=auth(query)), 401, "unauthenticated")


def test_web_page_login_sets_a_cookie_that_authenticates(
    client: TestClient, keys: dict[str, str]
) -> None:
    assert_error(client.post("/api/session", json={"key": "fl_00000000_" + "x" * 43}), 401)
    assert client.get("/api/session").status_code == 401
    response = client.post("/api/session", json={"key": keys["enroll"]})
    assert response.status_code == 200
    assert response.json()["role"] == "enroll"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/session").json()["role"] == "enroll"  # the cookie alone
    assert client.get("/api/people").status_code == 200
    client.delete("/api/session")
    assert client.get("/api/people").status_code == 401


def test_enroll_identify_verify_detect_and_people(
    client: TestClient, keys: dict[str, str], astronaut: np.ndarray, astronaut_jpeg: bytes
) -> None:
    admin = auth(keys["admin"])
    photos = [
        ("photos", ("astro1.jpg", astronaut_jpeg, "image/jpeg")),
        ("photos", ("astro2.jpg", jpeg(astronaut[:, ::-1].copy()), "image/jpeg")),
        ("photos", ("noise.jpg", b"not an image at all", "image/jpeg")),
        ("photos", ("blank.png", _png(np.full((64, 64, 3), 128, np.uint8)), "image/png")),
    ]
    enrolled = client.post(
        "/api/people", data={"name": " Eileen  Collins "}, files=photos, headers=admin
    )
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    assert body["person"]["name"] == "Eileen Collins"
    assert body["accepted"] == 2 and body["rejected"] == 2
    reasons = {p["source"]: p["reason"] for p in body["photos"]}
    assert reasons["astro1.jpg"] is None and "not an image" in reasons["noise.jpg"]
    assert reasons["blank.png"] == "no face found"

    identified = client.post(
        "/api/identify",
        files={"image": ("probe.jpg", jpeg(astronaut, 70), "image/jpeg")},
        params={"fmr": 1e-5, "top_k": 3},
        headers=admin,
    )
    assert identified.status_code == 200, identified.text
    result = identified.json()
    assert (result["width"], result["height"]) == (512, 512)
    assert result["fmr"] == 1e-5
    assert result["calibration"] == result["faces"][0]["calibration"] == "shipped:lfw"
    assert [f["identity"] for f in result["faces"]] == ["Eileen Collins"]
    x, y, w, h = result["faces"][0]["box"]
    assert 0 <= x < 512 and 0 <= y < 512 and w > 50 and h > 50

    verified = client.post(
        "/api/verify",
        files={
            "image_a": ("a.jpg", astronaut_jpeg, "image/jpeg"),
            "image_b": ("b.png", _png(astronaut), "image/png"),
        },
        headers=admin,
    )
    assert verified.status_code == 200 and verified.json()["same"] is True
    assert verified.json()["calibration"] == "shipped:lfw"

    detected = client.post(
        "/api/detect", files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}, headers=admin
    )
    assert detected.status_code == 200 and len(detected.json()["faces"]) == 1
    assert "template" not in json.dumps(detected.json())

    listed = client.get("/api/people", headers=admin).json()
    assert [(p["name"], p["templates"]) for p in listed] == [("Eileen Collins", 2)]
    person = client.get("/api/people/Eileen Collins", headers=admin).json()
    template_id = person["photos"][0]["id"]
    crop = client.get(f"/api/people/Eileen Collins/photos/{template_id}", headers=admin)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(crop.content)).size[0] > 50

    more = client.post(
        "/api/people/Eileen Collins/photos",
        files={"photos": ("astro3.jpg", jpeg(astronaut, 60), "image/jpeg")},
        headers=admin,
    )
    assert more.status_code == 201 and more.json()["person"]["templates"] == 3
    assert_error(
        client.post(
            "/api/people/Nobody/photos",
            files={"photos": ("a.jpg", astronaut_jpeg, "image/jpeg")},
            headers=admin,
        ),
        404,
        "person_not_found",
    )
    renamed = client.patch("/api/people/Eileen Collins", json={"name": "E. Collins"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json()["name"] == "E. Collins"
    assert (
        client.delete(f"/api/people/E. Collins/photos/{template_id}", headers=admin).status_code
        == 200
    )
    assert_error(client.delete(f"/api/people/E. Collins/photos/{template_id}", headers=admin), 404)
    assert client.delete("/api/people/E. Collins", headers=admin).json()["templates"] == 2
    assert client.get("/api/people", headers=admin).json() == []
    gone = client.post(
        "/api/identify", files={"image": ("p.jpg", astronaut_jpeg, "image/jpeg")}, headers=admin
    )
    assert gone.json()["faces"][0]["identity"] is None

    # The audit log: who did what to whom, never a template.
    entries = client.get("/api/audit", headers=admin).json()
    actions = [e["action"] for e in entries]
    for action in (
        "enroll",
        "identify",
        "verify",
        "detect",
        "export_crop",
        "add_photos",
        "rename",
        "erase_photo",
        "erase",
    ):
        assert action in actions
    enroll_entry = next(e for e in entries if e["action"] == "enroll")
    # enrolled as "Eileen Collins", renamed "E. Collins", erased: the former name goes too
    assert enroll_entry["target"].startswith("erased:")
    assert "Collins" not in json.dumps(entries)
    assert enroll_entry["detail"]["accepted"] == ["astro1.jpg", "astro2.jpg"]
    assert (
        enroll_entry["key_id"] == keys["admin"].split("_")[1]
        and enroll_entry["key_name"] == "test admin"
    )
    assert all(len(json.dumps(e)) < 2000 for e in entries)


def test_an_enrollment_with_no_usable_photo_is_a_422_with_every_reason(
    client: TestClient, keys: dict[str, str]
) -> None:
    error = assert_error(
        client.post(
            "/api/people",
            data={"name": "Grey"},
            files={"photos": ("grey.png", _png(np.full((80, 80, 3), 90, np.uint8)), "image/png")},
            headers=auth(keys["enroll"]),
        ),
        422,
        "no_usable_photo",
    )
    assert error["details"]["photos"][0]["reason"] == "no face found"
    assert client.get("/api/people", headers=auth(keys["enroll"])).json() == []


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        ({"image": ("a.txt", b"hello", "text/plain")}, 415, "unsupported_media_type"),
        ({"image": ("a.jpg", b"", "image/jpeg")}, 422, "decode_failed"),
        ({"image": ("a.jpg", b"\xff\xd8\xff\xe0garbage" * 50, "image/jpeg")}, 422, "decode_failed"),
        (
            {"image": ("bomb.png", png_claiming_size(50_000, 50_000), "image/png")},
            413,
            "image_too_large",
        ),
        ({"image": ("zero.png", png_claiming_size(0, 10), "image/png")}, 422, None),
        ({"other": ("a.jpg", b"x", "image/jpeg")}, 422, "invalid_request"),
    ],
)
def test_hostile_or_malformed_images_get_a_4xx_with_a_message(
    client: TestClient, keys: dict[str, str], files: dict[str, Any], status: int, code: str | None
) -> None:
    assert_error(
        client.post("/api/identify", files=files, headers=auth(keys["query"])), status, code
    )


def test_a_field_taken_once_sent_twice_is_refused_not_half_answered(
    client: TestClient, keys: dict[str, str], astronaut_jpeg: bytes
) -> None:
    """Two ``image`` parts to /api/identify (or two names to /api/people) are a 422, not an
    answer about the last part alone; ``photos`` still takes several."""
    headers = auth(keys["admin"])
    two = [("image", ("a.jpg", astronaut_jpeg, "image/jpeg"))] * 2
    for path in ("/api/identify", "/api/detect"):
        refused = assert_error(
            client.post(path, files=two, headers=headers), 422, "invalid_request"
        )
        assert "send one 'image' part (2 were sent)" in refused["message"]
    names = client.post(
        "/api/people",
        data={"name": ["Ann", "Bea"]},
        files={"photos": ("a.jpg", astronaut_jpeg, "image/jpeg")},
        headers=headers,
    )
    assert_error(names, 422, "invalid_request")
    assert client.get("/api/people", headers=headers).json() == []


def test_truncated_images_and_wrong_bodies_are_refused(
    client: TestClient, keys: dict[str, str], astronaut_jpeg: bytes
) -> None:
    headers = auth(keys["admin"])
    truncated = astronaut_jpeg[: len(astronaut_jpeg) // 3]
    response = client.post(
        "/api/detect", files={"image": ("t.jpg", truncated, "image/jpeg")}, headers=headers
    )
    assert response.status_code in (200, 422)  # Pillow may decode the top third; never a 5xx
    assert_error(
        client.post("/api/identify", json={"image": "x"}, headers=headers),
        415,
        "unsupported_media_type",
    )
    assert_error(
        client.post(
            "/api/identify",
            content=b"--x\r\nbroken",
            headers={**headers, "content-type": "multipart/form-data; boundary=x"},
        ),
        422,
    )
    assert_error(
        client.post(
            "/api/identify",
            files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
            params={"fmr": 2},
            headers=headers,
        ),
        422,
        "invalid_request",
    )
    assert_error(
        client.post(
            "/api/identify",
            files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
            params={"fmr": 1e-12},
            headers=headers,
        ),
        422,
        "calibration",
    )
    too_many = [("photos", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(40)]
    assert_error(
        client.post("/api/people", data={"name": "X"}, files=too_many, headers=headers),
        422,
        "invalid_request",
    )
    assert_error(
        client.patch("/api/people/X", json={"name": "\x00\x01"}, headers=headers),
        422,
        "invalid_name",
    )
    assert_error(
        client.patch(
            "/api/people/X",
            content=b"{not json",
            headers={**headers, "content-type": "application/json"},
        ),
        422,
    )
    assert_error(client.get("/api/no/such/route", headers=headers), 404, "route_not_found")
    assert_error(client.put("/api/people", headers=headers), 405, "method_not_allowed")


def test_a_body_above_the_limit_is_refused_before_it_is_read(
    client: TestClient, keys: dict[str, str], settings: ServiceSettings
) -> None:
    big = b"\xff" * (settings.max_request_bytes + 1)
    assert_error(
        client.post(
            "/api/identify",
            files={"image": ("big.jpg", big, "image/jpeg")},
            headers=auth(keys["query"]),
        ),
        413,
        "request_too_large",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        boundary = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        yield boundary
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b"\xff" * 65536

    streamed = client.post(
        "/api/identify",
        content=chunks(),
        headers={**auth(keys["query"]), "content-type": "multipart/form-data; boundary=b"},
    )
    assert_error(streamed, 413, "request_too_large")


def test_docs_are_served_without_any_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text.replace(
        "https://swagger.io", ""
    )
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert client.get(asset).status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/identify", "/api/people", "/api/jobs/anonymize", "/api/people/{name}"} <= set(
        schema["paths"]
    )
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])


def test_photo_zip_job_runs_in_the_background_with_progress_and_a_download(
    client: TestClient, keys: dict[str, str], astronaut: np.ndarray, astronaut_jpeg: bytes
) -> None:
    admin, query = auth(keys["admin"]), auth(keys["query"])
    client.post(
        "/api/people",
        data={"name": "Eileen"},
        files={"photos": ("a.jpg", astronaut_jpeg, "image/jpeg")},
        headers=admin,
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("one.jpg", jpeg(astronaut, 80))
        zipped.writestr("folder/two.png", _png(astronaut[::2, ::2].copy()))
        zipped.writestr("broken.jpg", b"\xff\xd8 broken")
    kinds = {k["kind"] for k in client.get("/api/jobs/kinds", headers=query).json()}
    assert "identify_photos" in kinds
    started = client.post(
        "/api/jobs/identify_photos",
        files={"file": ("photos.zip", archive.getvalue(), "application/zip")},
        data={"params": json.dumps({"fmr": 1e-4})},
        headers=query,
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running")
    if job["state"] != "done":
        assert_error(
            client.get(f"/api/jobs/{job['id']}/result", headers=query), 409, "job_not_ready"
        )
    seen_states = set()
    for _ in range(600):  # the runner thread of this app does the work
        job = client.get(f"/api/jobs/{job['id']}", headers=query).json()
        seen_states.add(job["state"])
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["state"] == "done", job
    assert job["progress"] == 1.0 and job["result"]["summary"]["photos"] == 3
    assert job["result"]["summary"]["identified"] == ["Eileen"]
    download = client.get(job["download"], headers=query)
    assert download.status_code == 200
    result = download.json()
    by_photo = {p["photo"]: p for p in result["photos"]}
    assert by_photo["one.jpg"]["faces"][0]["identity"] == "Eileen"
    assert by_photo["broken.jpg"]["error"]["code"] == "decode_failed"
    # Another non-admin key does not see this job; an admin does.
    other = auth(keys["enroll"])
    assert_error(client.get(f"/api/jobs/{job['id']}", headers=other), 404, "job_not_found")
    assert [j["id"] for j in client.get("/api/jobs", headers=admin).json()] == [job["id"]]
    assert client.delete(f"/api/jobs/{job['id']}", headers=query).json() == {"deleted": job["id"]}
    assert_error(client.get(f"/api/jobs/{job['id']}", headers=query), 404)


def test_bad_job_uploads_are_refused_before_queueing(
    client: TestClient, keys: dict[str, str]
) -> None:
    query = auth(keys["query"])
    assert_error(
        client.post(
            "/api/jobs/nope", files={"file": ("a.zip", b"x", "application/zip")}, headers=query
        ),
        405,
        "job_kind_not_found",
    )
    assert_error(
        client.post(
            "/api/jobs/identify_photos",
            files={"file": ("a.zip", b"not a zip", "application/zip")},
            headers=query,
        ),
        422,
        "decode_failed",
    )
    assert_error(
        client.post(
            "/api/jobs/identify_photos",
            files={"file": ("a.txt", b"PK", "text/plain")},
            headers=query,
        ),
        415,
    )
    assert_error(
        client.post(
            "/api/jobs/identify_photos",
            files={"file": ("a.zip", _zip({"a.jpg": b"x"}), "application/zip")},
            data={"params": '{"unknown": 1}'},
            headers=query,
        ),
        422,
        "invalid_request",
    )
    assert_error(
        client.post(
            "/api/jobs/identify_photos",
            files={"file": ("a.zip", _zip({"a.jpg": b"x"}), "application/zip")},
            data={"params": "[1, 2"},
            headers=query,
        ),
        422,
        "invalid_request",
    )
    folder_here = assert_error(
        client.post(
            "/api/jobs/library_scan",
            files={"file": ("a.jpg", b"x", "image/jpeg")},
            data={"params": '{"folder": "2024"}'},
            headers=auth(keys["enroll"]),
        ),
        422,
        "invalid_request",
    )
    assert "POST /api/library/scan" in folder_here["message"]  # where a folder scan goes
    assert client.get("/api/jobs", headers=query).json() == []


def test_a_zip_bomb_is_refused_from_its_declared_sizes(tmp_path: Path) -> None:
    settings = ServiceSettings(gallery=str(tmp_path / "g.db"), max_upload_bytes=1024 * 1024)
    query = auth(make_keys(settings)["query"])
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("zeros.jpg", b"\0" * (16 * 1024 * 1024))  # 16 MiB of zeros, ~16 KiB zipped
    assert len(bomb.getvalue()) < 100_000
    with TestClient(create_app(settings)) as client:
        assert_error(
            client.post(
                "/api/jobs/identify_photos",
                files={"file": ("bomb.zip", bomb.getvalue(), "application/zip")},
                headers=query,
            ),
            413,
            "request_too_large",
        )
        assert client.get("/api/jobs", headers=query).json() == []


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def test_keys_and_audit_from_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from facelens.cli.main import cli

    gallery = str(tmp_path / "people.db")
    runner = CliRunner()
    created = runner.invoke(
        cli,
        ["--gallery", gallery, "keys", "create", "--role", "enroll", "--name", "kiosk", "--json"],
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["role"] == "enroll" and key["key"].startswith(f"fl_{key['id']}_")
    state_file = ServiceSettings(gallery=gallery).state_db
    secret = key["key"].split("_", 2)[2]
    raw = b"".join(p.read_bytes() for p in state_file.parent.glob("service.db*"))
    assert secret.encode() not in raw  # only its sha256 is stored

    listed = json.loads(runner.invoke(cli, ["--gallery", gallery, "keys", "list", "--json"]).stdout)
    assert [(k["id"], k["name"], k["revoked_at"]) for k in listed] == [(key["id"], "kiosk", None)]
    assert "key" not in listed[0]
    revoked = runner.invoke(cli, ["--gallery", gallery, "keys", "revoke", key["id"]])
    assert revoked.exit_code == 0, revoked.output
    assert (
        runner.invoke(cli, ["--gallery", gallery, "keys", "list", "--json"]).stdout.strip() == "[]"
    )
    assert runner.invoke(cli, ["--gallery", gallery, "keys", "revoke", "ffffffff"]).exit_code == 1
    bad_role = runner.invoke(cli, ["--gallery", gallery, "keys", "create", "--role", "root"])
    assert bad_role.exit_code == 2

    with TestClient(create_app(ServiceSettings(gallery=gallery))) as client:
        assert_error(client.get("/api/people", headers=auth(key["key"])), 401, "unauthenticated")
    audit = json.loads(runner.invoke(cli, ["--gallery", gallery, "audit", "--json"]).stdout)
    assert [e["action"] for e in audit] == ["create_key", "revoke_key", "refused"]
    assert audit[2]["detail"]["key_id"] == key["id"] and "revoked" in audit[2]["detail"]["reason"]
    assert audit[0]["target"] == key["id"] and audit[0]["detail"]["role"] == "enroll"
    table = runner.invoke(cli, ["--gallery", gallery, "audit", "--action", "revoke_key"])
    assert table.exit_code == 0 and "revoke_key" in table.output


def test_a_cancelled_job_stops_and_keeps_no_result(
    client: TestClient, keys: dict[str, str], astronaut: np.ndarray
) -> None:
    query = auth(keys["query"])
    photos = {f"p{i:02d}.jpg": jpeg(astronaut, 50 + i) for i in range(40)}
    started = client.post(
        "/api/jobs/identify_photos",
        files={"file": ("many.zip", _zip(photos), "application/zip")},
        headers=query,
    ).json()
    running = assert_error(
        client.delete(f"/api/jobs/{started['id']}", headers=query), 409, "job_running"
    )  # DELETE deletes: a job still at work is cancelled first
    assert "cancel it first" in running["message"]
    cancelled = client.post(f"/api/jobs/{started['id']}/cancel", headers=query).json()
    assert cancelled["state"] == "cancelled"
    time.sleep(1.0)  # give the runner time to notice; the state must not change
    job = client.get(f"/api/jobs/{started['id']}", headers=query).json()
    assert job["state"] == "cancelled" and job["result"] is None
    assert_error(client.get(f"/api/jobs/{job['id']}/result", headers=query), 409, "job_not_ready")
    assert client.delete(f"/api/jobs/{job['id']}", headers=query).json() == {"deleted": job["id"]}


def test_an_encrypted_gallery_is_served_with_its_key_and_refused_without(
    tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    from click.testing import CliRunner

    from facelens.cli.main import cli
    from facelens.errors import GalleryKeyError

    key_file = tmp_path / "gallery.key"
    assert CliRunner().invoke(cli, ["gallery", "new-key", str(key_file)]).exit_code == 0
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"), key_file=str(key_file))
    admin = auth(make_keys(settings)["admin"])
    with TestClient(create_app(settings)) as client:
        enrolled = client.post(
            "/api/people",
            data={"name": "Eileen"},
            files={"photos": ("a.jpg", astronaut_jpeg, "image/jpeg")},
            headers=admin,
        )
        assert enrolled.status_code == 201, enrolled.text
        identified = client.post(
            "/api/identify", files={"image": ("p.jpg", astronaut_jpeg, "image/jpeg")}, headers=admin
        )
        assert identified.json()["faces"][0]["identity"] == "Eileen"
    info = CliRunner().invoke(cli, ["--gallery", settings.gallery or "", "gallery", "info"])
    assert "encrypt" in info.output.lower()
    without_key = ServiceSettings(gallery=settings.gallery)
    with pytest.raises(GalleryKeyError), TestClient(create_app(without_key)):
        pass  # the server does not start on a gallery it cannot read


def test_an_oversized_photo_inside_a_zip_fails_alone(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    settings = ServiceSettings(
        gallery=str(tmp_path / "g.db"),
        max_request_bytes=1024 * 1024,
        max_upload_bytes=8 * 1024 * 1024,
    )
    query = auth(make_keys(settings)["query"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("huge.jpg", b"\0" * (3 * 1024 * 1024))
        zipped.writestr("fine.jpg", astronaut_jpeg)
    with TestClient(create_app(settings)) as client:
        job = client.post(
            "/api/jobs/identify_photos",
            files={"file": ("p.zip", archive.getvalue(), "application/zip")},
            headers=query,
        ).json()
        for _ in range(600):
            job = client.get(f"/api/jobs/{job['id']}", headers=query).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert job["state"] == "done", job
        photos = {
            p["photo"]: p for p in client.get(job["download"], headers=query).json()["photos"]
        }
    assert photos["huge.jpg"]["error"]["code"] == "request_too_large"
    assert len(photos["fine.jpg"]["faces"]) == 1


def test_a_gallery_key_that_no_longer_opens_the_gallery_is_503_not_500() -> None:
    from facelens.errors import GalleryKeyMismatchError, GalleryKeyRequiredError
    from facelens.service.errors import http_status

    assert http_status(GalleryKeyMismatchError("the key was rotated")) == 503
    assert http_status(GalleryKeyRequiredError("no key")) == 503
