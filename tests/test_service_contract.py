"""The service's contract, in process: errors name the user's upload and never the server's
files; 405 answers list the allowed methods; names follow the schema's pattern; the audit
log records refusals and keeps no erased name."""

from __future__ import annotations

import io
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facelens.service.app import create_app
from facelens.service.keys import KeyStore
from facelens.service.routes.jobs import start_runner
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(gallery=str(tmp_path / "g.db"), max_video_seconds=10)


@pytest.fixture
def admin(settings: ServiceSettings) -> dict[str, str]:
    state = StateDB(settings.state_db)
    key = KeyStore(state).create("contract test", "admin")[1]
    state.close()
    return {"X-API-Key": key}


def wait_finished(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never finished")


def test_a_failed_video_job_names_the_upload_and_no_server_path(
    tmp_path: Path, settings: ServiceSettings, admin: dict[str, str]
) -> None:
    pytest.importorskip("facelens.apps.video.identify")
    from tests.test_service_jobs import synthetic_clip

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=10)
    server_dir = str(settings.state_dir.resolve())
    with TestClient(create_app(settings, start_jobs=False)) as client:
        # A video that is damaged on disk after it was accepted: the job fails when it opens it.
        started = client.post(
            "/api/jobs/video_identify",
            files={"file": ("holiday clip.mp4", clip.read_bytes(), "video/mp4")},
            headers=admin,
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        saved = settings.jobs_dir / job_id / "input.mp4"
        saved.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 4000)
        runner = start_runner(client.app.state.service)  # type: ignore[attr-defined]
        try:
            job = wait_finished(client, admin, job_id)
        finally:
            runner.stop()
        assert job["state"] == "failed", job
        message = job["error"]["message"]
        assert "holiday clip.mp4" in message, message
        assert server_dir not in message and "input.mp4" not in message, message
        assert str(settings.jobs_dir) not in job["message"]

        # A video refused at upload: the same rule.
        refused = client.post(
            "/api/jobs/video_identify",
            files={"file": ("broken.mp4", b"not a video at all" * 100, "video/mp4")},
            headers=admin,
        )
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert "broken.mp4" in message and server_dir not in message, message
        assert str(settings.jobs_dir) not in message and "input.mp4" not in message, message


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_refused_logins_are_in_the_audit_log_with_key_id_address_and_reason(
    settings: ServiceSettings, admin: dict[str, str]
) -> None:
    state = StateDB(settings.state_db)
    keys = KeyStore(state)
    query_key = keys.create("reader", "query")
    revoked_key = keys.create("old kiosk", "query")
    keys.revoke(revoked_key[0].id)
    state.close()
    unknown = "fl_0badc0de_" + "A" * 43
    with TestClient(create_app(settings, start_jobs=False)) as client:
        assert client.get("/api/people").status_code == 401
        assert client.get("/api/people", headers={"X-API-Key": unknown}).status_code == 401
        assert client.get("/api/people", headers={"X-API-Key": revoked_key[1]}).status_code == 401
        assert client.get("/api/people", headers={"X-API-Key": "not a key"}).status_code == 401
        # A bad credential is never ignored because another one is good.
        both = {**admin, "Authorization": "Basic dXNlcjpwYXNz"}
        assert client.get("/api/people", headers=both).status_code == 401
        cookie_too = client.get(
            "/api/people", headers={**admin, "Cookie": f"facelens_key={unknown}"}
        )
        assert cookie_too.status_code == 401
        assert client.post("/api/session", json={"key": revoked_key[1]}).status_code == 401
        assert client.get("/api/audit", headers={"X-API-Key": query_key[1]}).status_code == 403
        audit = client.get("/api/audit", params={"action": "refused"}, headers=admin).json()
    assert len(audit) == 8
    assert all(e["detail"]["address"] == "testclient" and e["detail"]["reason"] for e in audit)
    assert [e["outcome"] for e in audit] == ["unauthenticated"] * 7 + ["forbidden"]
    assert [e["detail"].get("key_id") for e in audit[:7]] == [
        None,
        "0badc0de",
        revoked_key[0].id,
        None,
        None,
        "0badc0de",
        revoked_key[0].id,
    ]
    assert "revoked" in audit[2]["detail"]["reason"] and audit[2]["target"] == "GET /api/people"
    assert "Authorization" in audit[4]["detail"]["reason"]
    assert audit[6]["target"] == "POST /api/session"
    assert audit[7]["key_id"] == query_key[0].id and audit[7]["target"] == "GET /api/audit"
    assert all(revoked_key[1] not in json.dumps(e) for e in audit)  # never the key itself


def service_files(settings: ServiceSettings) -> bytes:
    return b"".join(p.read_bytes() for p in settings.state_dir.glob("service.db*"))


def test_an_erased_name_leaves_every_audit_entry_but_action_time_and_actor_stay(
    settings: ServiceSettings, admin: dict[str, str], astronaut: np.ndarray
) -> None:
    name = "Eileen Collins"
    photo = jpeg(astronaut)
    with TestClient(create_app(settings, start_jobs=False)) as client:
        enrolled = client.post(
            "/api/people",
            data={"name": name},
            files={"photos": (f"{name} 1998.jpg", photo, "image/jpeg")},
            headers=admin,
        )
        assert enrolled.status_code == 201, enrolled.text
        found = client.post(
            "/api/identify", files={"image": ("q.jpg", photo, "image/jpeg")}, headers=admin
        )
        assert found.json()["faces"][0]["identity"] == name
        client.post(
            "/api/people",
            data={"name": "Sally Ride"},
            files={"photos": ("sally.jpg", b"not an image", "image/jpeg")},
            headers=admin,
        )
        before = client.get("/api/audit", headers=admin).json()
        assert name.encode() in service_files(settings)
        assert client.delete(f"/api/people/{name}", headers=admin).status_code == 200
        after = client.get("/api/audit", headers=admin).json()
    assert [(e["id"], e["at"], e["action"], e["key_id"]) for e in after] == [
        (e["id"], e["at"], e["action"], e["key_id"]) for e in before
    ] + [(after[-1]["id"], after[-1]["at"], "erase", before[0]["key_id"])]
    assert name not in json.dumps(after, ensure_ascii=False)
    token = after[-1]["target"]
    assert token.startswith("erased:") and after[0]["target"] == token  # the enroll, same token
    assert after[1]["detail"]["identified"] == [token]
    assert after[0]["detail"]["accepted"] == [f"{token} 1998.jpg"]
    assert after[2]["target"] == "Sally Ride"  # others keep their names
    raw = service_files(settings)
    assert name.encode() not in raw and name.encode("utf-16-le") not in raw


def test_an_erased_person_s_former_names_leave_the_audit_log_too(
    settings: ServiceSettings, admin: dict[str, str], astronaut: np.ndarray
) -> None:
    """Enrolled as one name, renamed twice, erased by the last: none of the three names stays."""
    names = ("Eileen Collins", "E. Collins", "Commander Collins")
    with TestClient(create_app(settings, start_jobs=False)) as client:
        enrolled = client.post(
            "/api/people",
            data={"name": names[0]},
            files={"photos": ("a.jpg", jpeg(astronaut), "image/jpeg")},
            headers=admin,
        )
        assert enrolled.status_code == 201, enrolled.text
        for old, new in itertools.pairwise(names):
            renamed = client.patch(f"/api/people/{old}", json={"name": new}, headers=admin)
            assert renamed.status_code == 200, renamed.text
        assert client.delete(f"/api/people/{names[-1]}", headers=admin).status_code == 200
        log = json.dumps(client.get("/api/audit", headers=admin).json(), ensure_ascii=False)
    raw = service_files(settings)
    for name in names:
        assert name not in log and name.encode() not in raw, name


def test_erasures_from_the_command_line_are_audited_as_cli_with_the_os_user(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    import getpass

    from click.testing import CliRunner

    from facelens.api import FaceLens
    from facelens.cli.main import cli

    gallery = str(tmp_path / "people.db")
    photo = tmp_path / "ada.png"
    Image.fromarray(astronaut).save(photo)
    with FaceLens(gallery=gallery) as lens:
        lens.enroll("Ada Lovelace", [photo, np.ascontiguousarray(astronaut[:, ::-1])])
        first = lens.gallery.list_templates("Ada Lovelace")[0].id
    runner = CliRunner()
    removed = runner.invoke(
        cli, ["--gallery", gallery, "people", "remove", "Ada Lovelace", "--template", str(first)]
    )
    assert removed.exit_code == 0, removed.output
    audit = json.loads(runner.invoke(cli, ["--gallery", gallery, "audit", "--json"]).stdout)
    assert [(e["action"], e["target"], e["role"]) for e in audit] == [
        ("erase_photo", "Ada Lovelace", "cli")
    ]
    assert audit[0]["key_name"] == getpass.getuser() and audit[0]["key_id"] is None
    erased = runner.invoke(cli, ["--gallery", gallery, "people", "remove", "Ada Lovelace"])
    assert erased.exit_code == 0, erased.output
    audit = json.loads(runner.invoke(cli, ["--gallery", gallery, "audit", "--json"]).stdout)
    assert [e["action"] for e in audit] == ["erase_photo", "erase"]
    assert all(e["target"].startswith("erased:") and e["role"] == "cli" for e in audit)
    assert audit[0]["target"] == audit[1]["target"]
    table = runner.invoke(cli, ["--gallery", gallery, "audit"])
    assert f"cli ({getpass.getuser()})" in table.output
    raw = service_files(ServiceSettings(gallery=gallery))
    assert b"Ada Lovelace" not in raw


def test_a_405_lists_the_allowed_methods_of_the_resource(
    settings: ServiceSettings, admin: dict[str, str]
) -> None:
    with TestClient(create_app(settings, start_jobs=False)) as client:
        for method, path, allowed in [
            ("TRACE", "/api/people/Ada", "DELETE, GET, PATCH"),
            ("PUT", "/api/people/Ada/photos/3", "DELETE, GET"),
            ("TRACE", "/api/jobs/kinds", "GET"),
            ("TRACE", "/api/jobs/anonymize", "POST"),
            ("TRACE", "/api/jobs/0123abcd", "DELETE, GET"),
            ("PUT", "/api/session", "DELETE, GET, POST"),
            ("POST", "/api/health", "GET"),
        ]:
            answer = client.request(method, path, headers=admin)
            assert answer.status_code == 405, (method, path)
            assert answer.headers["allow"] == allowed, (method, path)
            assert answer.json()["error"]["code"] == "method_not_allowed"


def test_the_name_pattern_of_the_schema_is_the_name_rule() -> None:
    import re
    import sys

    from facelens.service.schemas import name_character_refused, name_pattern

    pattern = re.compile(name_pattern())
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        # one character between letters: allowed exactly when the rule does not refuse it
        assert bool(pattern.match(f"a{char}b")) is not name_character_refused(char), hex(code)
    for name in ["Ada", "Zoë Ünal", "  Ada  Lovelace ", "...", "O'Brien", "李小龙"]:
        assert pattern.match(name), name
    for name in ["", "   ", ".", " .. ", "a/b", "a\nb", "Ada\u202e", "\u2066x"]:
        assert not pattern.match(name), repr(name)


def test_the_schema_describes_uploads_names_and_each_job_kind(
    settings: ServiceSettings, admin: dict[str, str]
) -> None:
    with TestClient(create_app(settings, start_jobs=False)) as client:
        schema = client.get("/openapi.json").json()
    bodies = schema["components"]["schemas"]
    photos = bodies["Body_enroll_api_people_post"]["properties"]["photos"]
    assert photos["minItems"] == 1 and photos["maxItems"] == settings.max_images_per_request
    assert photos["items"]["minLength"] == 1
    assert bodies["Body_detect_api_detect_post"]["properties"]["image"]["minLength"] == 1
    assert "pattern" in bodies["Body_enroll_api_people_post"]["properties"]["name"]
    assert "pattern" in bodies["RenameRequest"]["properties"]["name"]
    detect = schema["paths"]["/api/detect"]["post"]["requestBody"]["content"]
    assert detect["multipart/form-data"]["encoding"]["image"]["contentType"].startswith("image/")
    assert "/api/jobs/{kind}" not in schema["paths"]
    zip_job = schema["paths"]["/api/jobs/identify_photos"]["post"]["requestBody"]["content"]
    body = zip_job["multipart/form-data"]
    assert body["encoding"]["file"]["contentType"] == "application/zip"
    params = body["schema"]["properties"]["params"]
    assert params["properties"]["top_k"] == {"type": "integer", "minimum": 1, "maximum": 50}
    assert params["properties"]["fmr"]["minimum"] > 0
    result = schema["paths"]["/api/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "video/mp4", "text/html", "text/csv"} <= set(result)


def test_job_parameters_outside_the_schema_are_refused_before_queueing(
    settings: ServiceSettings, admin: dict[str, str], tmp_path: Path
) -> None:
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a.png", b"x")
    with TestClient(create_app(settings, start_jobs=False)) as client:
        for params in [
            {"top_k": 0},
            {"top_k": 51},
            {"fmr": 0.01, "threshold": 0.3},
            {"fmr": 1e-12},  # below what the calibration supports
            {"threshold": 1.5},
        ]:
            answer = client.post(
                "/api/jobs/identify_photos",
                files={"file": ("p.zip", archive.getvalue(), "application/zip")},
                data={"params": json.dumps(params)},
                headers=admin,
            )
            assert answer.status_code == 422, (params, answer.text)
            if params == {"top_k": 0}:  # in words, not JSON Schema's keywords
                message = answer.json()["error"]["message"]
                assert message == "parameter 'top_k' must be at least 1, not 0"
        assert client.get("/api/jobs", headers=admin).json() == []
        text = client.post(
            "/api/jobs/anonymize",
            files={"file": ("notes.txt", b"hello", "text/plain")},
            headers=admin,
        )
        assert text.status_code == 415
        assert text.json()["error"]["message"] == (
            "anonymize takes an image or a video, not 'text/plain'"
        )
        kinds = {k["kind"]: k for k in client.get("/api/jobs/kinds", headers=admin).json()}
        assert kinds["anonymize"]["choices"] == {"method": ["blur", "pixelate", "box", "ellipse"]}


def test_a_photo_part_without_a_file_name_is_a_photo(
    settings: ServiceSettings, admin: dict[str, str], astronaut: np.ndarray
) -> None:
    boundary = "facelensboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + jpeg(astronaut)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**admin, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    with TestClient(create_app(settings, start_jobs=False)) as client:
        found = client.post("/api/detect", content=body, headers=headers)
        assert found.status_code == 200, found.text
        assert found.json()["photo"] == "upload" and len(found.json()["faces"]) == 1
        # fmr and threshold together: the threshold is used
        both = client.post(
            "/api/identify",
            params={"fmr": 0.001, "threshold": 0.5},
            files={"image": ("a.jpg", jpeg(astronaut), "image/jpeg")},
            headers=admin,
        )
        assert both.status_code == 200 and both.json()["threshold"] == 0.5, both.text


def test_refusals_of_malformed_bodies_and_large_photos_speak_to_an_api_client(
    tmp_path: Path, admin: dict[str, str]
) -> None:
    """An empty name, a body that is not JSON and a photo above the server's pixel limit are
    refused in the client's terms: no pydantic location codes, no server environment variable."""
    settings = ServiceSettings(gallery=str(tmp_path / "g.db"), max_pixels=10_000)
    photo = io.BytesIO()
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(photo, format="PNG")
    with TestClient(create_app(settings, start_jobs=False)) as client:
        empty = client.post(
            "/api/people",
            data={"name": ""},
            files={"photos": ("a.png", photo.getvalue(), "image/png")},
            headers=admin,
        )
        assert empty.status_code == 422
        assert empty.json()["error"]["message"] == (
            "body.name: required (a form field sent empty counts as missing)"
        )
        broken = client.patch(
            "/api/people/someone",
            content=b"{not json",
            headers={**admin, "Content-Type": "application/json"},
        )
        assert broken.status_code == 422
        message = broken.json()["error"]["message"]
        assert message.startswith("the body is not valid JSON (") and "at character 1" in message
        large = client.post(
            "/api/detect",
            files={"image": ("big.png", photo.getvalue(), "image/png")},
            headers=admin,
        )
        assert large.status_code == 413
        message = large.json()["error"]["message"]
        assert "FACELENS_MAX_PIXELS" not in message and "facelens serve --max-pixels" in message
        enrolled = client.post(  # the same advice in each photo's reason of an enrollment
            "/api/people",
            data={"name": "Big Photo"},
            files={"photos": ("big.png", photo.getvalue(), "image/png")},
            headers=admin,
        )
        assert enrolled.status_code in (413, 422), enrolled.text
        answer = json.dumps(enrolled.json())
        assert "FACELENS_MAX_PIXELS" not in answer and "facelens serve --max-pixels" in answer


def test_validation_refusals_read_in_the_callers_words(
    settings: ServiceSettings, admin: dict[str, str], astronaut: np.ndarray
) -> None:
    """Pydantic's and the job parameters' wording ("String should have at least 1
    character", "Expected UploadFile", "must be a int") read as what to send instead."""
    photo = ("a.jpg", jpeg(astronaut), "image/jpeg")
    with TestClient(create_app(settings, start_jobs=False)) as client:
        spaces = client.post("/api/session", json={"key": ""})
        assert spaces.json()["error"]["message"] == "body.key: cannot be empty"
        face = client.post(
            "/api/people", data={"name": "Ann", "face": "left"}, files={"photos": photo},
            headers=admin,
        )  # fmt: skip
        assert face.status_code == 422
        assert "give 'only', 'largest' or a point 'X,Y'" in face.json()["error"]["message"]
        text = client.post("/api/identify", files={"image": (None, "not a file")}, headers=admin)
        assert "body.image: send a file here" in text.json()["error"]["message"], text.text
        every = client.post(
            "/api/jobs/video_identify",
            files={"file": ("a.mp4", b"x", "video/mp4")},
            data={"params": json.dumps({"every": "two"})},
            headers=admin,
        )
        assert every.json()["error"]["message"] == "parameter 'every' must be a whole number"


def test_an_unknown_face_of_the_library_names_no_file(
    settings: ServiceSettings, admin: dict[str, str]
) -> None:
    with TestClient(create_app(settings, start_jobs=False)) as client:
        missing = client.get("/api/library/faces/99999/crop", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no face 99999 in the library"
