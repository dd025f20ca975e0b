"""The service's contract, in process: errors name the user's upload and never the server's
files; 405 answers list the allowed methods; names follow the schema's pattern; the audit
log records refusals and keeps no erased name."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

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
    pytest.importorskip("facelens.apps.video_identify")
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
