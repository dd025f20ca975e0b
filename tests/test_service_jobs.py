"""Video and anonymization jobs through the service (in process): upload, progress, download.

The clip is synthesized here (the astronaut's head moving across a grey frame,
H.264 via PyAV), so these tests need no shared data.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facelens.service.app import create_app
from facelens.service.keys import KeyStore
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB
from tests.conftest import data_path

pytest.importorskip("facelens.apps.video.identify")
pytest.importorskip("facelens.apps.anonymize")

WIDTH, HEIGHT, FPS, FACE = 480, 320, 10, 150


def synthetic_clip(path: Path, frames: int = 20) -> Path:
    """The astronaut's head moving right 8 px a frame (wrapping) on grey, ``frames / FPS`` seconds of H.264."""
    from skimage import data

    head = cv2.resize(data.astronaut()[0:300, 100:400], (FACE, FACE), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(frames):
            canvas = np.full((HEIGHT, WIDTH, 3), 70, np.uint8)
            x = 10 + (8 * index) % (WIDTH - FACE - 10)
            canvas[80 : 80 + FACE, x : x + FACE] = head
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture
def service(tmp_path: Path, astronaut: np.ndarray) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"), max_video_seconds=10)
    state = StateDB(settings.state_db)
    key = KeyStore(state).create("jobs test", "admin")[1]
    state.close()
    headers = {"X-API-Key": key}
    with TestClient(create_app(settings)) as client:
        enrolled = client.post(
            "/api/people",
            data={"name": "Eileen"},
            files={"photos": ("a.jpg", jpeg(astronaut), "image/jpeg")},
            headers=headers,
        )
        assert enrolled.status_code == 201
        yield client, headers


def finished(client: TestClient, headers: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    progress = []
    for _ in range(1200):
        job = client.get(f"/api/jobs/{job['id']}", headers=headers).json()
        progress.append(job["progress"])
        if job["state"] in ("done", "failed", "failed_check", "cancelled"):
            break
        time.sleep(0.1)
    assert progress == sorted(progress), "progress never goes back"
    return job


def test_video_identify_job_gives_a_timeline_and_an_annotated_video(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, headers = service
    clip = synthetic_clip(tmp_path / "clip.mp4")
    started = client.post(
        "/api/jobs/video_identify",
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
        data={"params": json.dumps({"draw": True})},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    job = finished(client, headers, started.json())
    assert job["state"] == "done", job
    assert job["result"]["summary"]["people"] == ["Eileen"]
    video = client.get(job["download"], headers=headers)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    drawn = tmp_path / "drawn.mp4"
    drawn.write_bytes(video.content)
    with av.open(str(drawn)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 20
    timeline = client.get(job["download"], params={"file": "timeline.json"}, headers=headers).json()
    assert timeline["source"] == "clip.mp4" and timeline["people"] == ["Eileen"]
    assert timeline["drawn"] == "annotated.mp4"
    assert str(tmp_path) not in json.dumps(timeline)
    missing = client.get(job["download"], params={"file": "../service.db"}, headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_file_not_found"


def test_a_truncated_video_is_said_to_be_read_only_in_part(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    """The service reads at most --max-video-seconds of a video; a file cut before that is
    still reported as incomplete, with the reason, by both video jobs."""
    from tests.test_video import synthetic_frames, write_clip

    client, headers = service
    whole = write_clip(tmp_path / "whole.mp4", synthetic_frames(50), faststart=True)
    data = whole.read_bytes()
    cut = data[: len(data) // 2]
    cases = (
        ("video_identify", {}, "complete", False),
        ("anonymize", {"check": False}, "partial", True),
    )
    for kind, params, fact, value in cases:
        started = client.post(
            f"/api/jobs/{kind}",
            files={"file": ("cut.mp4", cut, "video/mp4")},
            data={"params": json.dumps(params)},
            headers=headers,
        )
        assert started.status_code == 202, started.text
        job = finished(client, headers, started.json())
        assert job["state"] == "done", job
        summary = job["result"]["summary"]
        assert summary[fact] is value, summary
        assert any("truncated" in problem for problem in summary["problems"]), summary


def test_anonymize_jobs_hide_the_face_of_an_image_and_of_a_video(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path, astronaut: np.ndarray
) -> None:
    client, headers = service
    image_job = client.post(
        "/api/jobs/anonymize",
        files={"file": ("astronaut.png", _png(astronaut), "image/png")},
        data={"params": json.dumps({"method": "pixelate"})},
        headers=headers,
    )
    assert image_job.status_code == 202, image_job.text
    job = finished(client, headers, image_job.json())
    assert job["state"] == "done", job
    assert job["result"]["summary"]["faces_anonymized"] == 1
    hidden = np.asarray(
        Image.open(io.BytesIO(client.get(job["download"], headers=headers).content))
    )
    assert hidden.shape == astronaut.shape
    identified = client.post(
        "/api/identify", files={"image": ("h.png", _png(hidden), "image/png")}, headers=headers
    ).json()
    assert all(face["identity"] is None for face in identified["faces"])
    report = client.get(job["download"], params={"file": "report.html"}, headers=headers)
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    record = client.get(job["download"], params={"file": "report.json"}, headers=headers).json()
    assert record["source"] == "astronaut.png" and record["output"] == "anonymized.png"
    assert str(tmp_path) not in json.dumps(record)

    clip = synthetic_clip(tmp_path / "clip.mp4")
    video_job = client.post(
        "/api/jobs/anonymize",
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
        data={"params": json.dumps({"check": False})},
        headers=headers,
    )
    job = finished(client, headers, video_job.json())
    assert job["state"] == "done", job
    assert job["result"]["summary"]["frames_touched"] == 20


def test_an_anonymization_that_fails_its_check_ends_as_failed_check_with_its_result(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    """A service whose detector searches a 16 px copy (``max_side=16``) finds no face to
    hide; the independent detector finds it outside every hidden region, so the job ends
    "failed_check", its files still downloadable."""
    settings = ServiceSettings(gallery=str(tmp_path / "people.db"), max_side=16)
    state = StateDB(settings.state_db)
    headers = {"X-API-Key": KeyStore(state).create("jobs test", "admin")[1]}
    state.close()
    with TestClient(create_app(settings)) as client:
        started = client.post(
            "/api/jobs/anonymize",
            files={"file": ("astronaut.png", _png(astronaut), "image/png")},
            headers=headers,
        )
        _check_failed_job(client, headers, finished(client, headers, started.json()))


def _check_failed_job(client: TestClient, headers: dict[str, str], job: dict[str, Any]) -> None:
    assert job["state"] == "failed_check", job
    assert job["result"]["check_failed"] is True and job["progress"] == 1.0
    assert "outside every hidden region" in job["result"]["summary"]["failures"][0]["what"]
    written = client.get(job["download"], headers=headers)
    assert written.status_code == 200 and written.content[:4] == b"\x89PNG"
    record = client.get(job["download"], params={"file": "report.json"}, headers=headers).json()
    assert record["check_failed"] and record["failures"]
    html = client.get(job["download"], params={"file": "report.html"}, headers=headers).text
    assert "Privacy check failed" in html and "data:image/jpeg;base64," in html
    deleted = client.delete(f"/api/jobs/{job['id']}", headers=headers)  # a finished job
    assert deleted.json() == {"deleted": job["id"]}


def test_video_uploads_are_checked_before_they_are_queued(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, headers = service
    long_clip = synthetic_clip(tmp_path / "long.mp4", frames=120)  # 12 s > the 10 s limit
    too_long = client.post(
        "/api/jobs/video_identify",
        files={"file": ("long.mp4", long_clip.read_bytes(), "video/mp4")},
        headers=headers,
    )
    assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "video_too_long"
    not_video = client.post(
        "/api/jobs/video_identify",
        files={"file": ("x.mp4", b"\x00\x00\x00\x18ftypmp42 but nothing else", "video/mp4")},
        headers=headers,
    )
    assert not_video.status_code == 422 and not_video.json()["error"]["code"] == "video_open_failed"
    bad_method = client.post(
        "/api/jobs/anonymize",
        files={"file": ("a.mp4", long_clip.read_bytes(), "video/mp4")},
        data={"params": json.dumps({"method": 3})},
        headers=headers,
    )
    assert bad_method.status_code == 422
    assert client.get("/api/jobs", headers=headers).json() == []


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# --- progress moves with the frames; the bytes, not the declared type, say image or video ------


def progress_seen(
    client: TestClient, headers: dict[str, str], job: dict[str, Any]
) -> tuple[dict[str, Any], list[float]]:
    """Poll a job until it ends: the last answer and the progress of every answer meanwhile."""
    seen: list[float] = []
    for _ in range(20_000):
        job = client.get(f"/api/jobs/{job['id']}", headers=headers).json()
        if job["state"] in ("done", "failed", "failed_check", "cancelled"):
            break  # (a failed check ends the job too: the test fails at once, not in 17 min)
        seen.append(job["progress"])
        time.sleep(0.05)
    return job, seen


def assert_moves(seen: list[float]) -> None:
    """Several distinct values strictly between 0 and 1, never going back."""
    inside = sorted({p for p in seen if 0 < p < 1})
    assert len(inside) >= 3, f"progress did not move with the frames: {seen}"
    assert seen == sorted(seen), "progress never goes back"


def test_anonymize_job_progress_moves_with_the_frames(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, headers = service
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=80)
    started = client.post(
        "/api/jobs/anonymize",
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    job, seen = progress_seen(client, headers, started.json())
    assert job["state"] == "done", job
    assert job["progress"] == 1.0
    assert_moves(seen)
    assert job["result"]["summary"]["frames_touched"] == 80


def test_video_identify_job_progress_moves_while_analysing_and_drawing(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, headers = service
    clip = synthetic_clip(tmp_path / "clip.mp4", frames=60)
    started = client.post(
        "/api/jobs/video_identify",
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
        data={"params": json.dumps({"draw": True})},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    job, seen = progress_seen(client, headers, started.json())
    assert job["state"] == "done", job
    assert_moves(seen)


def test_anonymize_takes_an_image_and_a_video_sent_as_octet_stream(
    service: tuple[TestClient, dict[str, str]], tmp_path: Path, astronaut: np.ndarray
) -> None:
    """What ``curl -F file=@clip.mp4`` sends: application/octet-stream, whatever the file."""
    client, headers = service
    clip = synthetic_clip(tmp_path / "clip.mp4").read_bytes()
    uploads = {
        "clip.mp4": (clip, "anonymized.mp4", "video/mp4"),
        "clip": (clip, "anonymized.mp4", "video/mp4"),  # no suffix: only the bytes tell
        "photo.jpg": (jpeg(astronaut), "anonymized.jpg", "image/jpeg"),
        "photo.bin": (_png(astronaut), "anonymized.png", "image/png"),
    }
    for name, (data, output, media_type) in uploads.items():
        started = client.post(
            "/api/jobs/anonymize",
            files={"file": (name, data, "application/octet-stream")},
            data={"params": json.dumps({"check": False})},
            headers=headers,
        )
        assert started.status_code == 202, (name, started.text)
        job = finished(client, headers, started.json())
        assert job["state"] == "done", (name, job)
        assert job["result"]["file"] == output, name
        assert job["result"]["summary"]["faces_anonymized"] >= 1, name
        result = client.get(job["download"], headers=headers)
        assert result.headers["content-type"] == media_type, name
    identified = client.post(
        "/api/jobs/video_identify",
        files={"file": ("clip.mp4", clip, "application/octet-stream")},
        headers=headers,
    )
    assert identified.status_code == 202, identified.text
    neither = client.post(
        "/api/jobs/anonymize",
        files={"file": ("notes.mp4", b"neither an image nor a video", "application/octet-stream")},
        headers=headers,
    )
    assert neither.status_code == 422, neither.text
    message = neither.json()["error"]["message"]
    assert message == "notes.mp4: neither an image nor a video that can be read"
    for junk in (b"hello", b"\xff\xd8\xff\xe0 not a whole JPEG"):  # FFmpeg "opens" a .jpg of it
        named_like_a_photo = client.post(
            "/api/jobs/anonymize",
            files={"file": ("b.jpg", junk, "image/jpeg")},
            headers=headers,
        )
        assert named_like_a_photo.status_code == 422, named_like_a_photo.text
        refused = named_like_a_photo.json()["error"]
        assert refused["code"] == "decode_failed", refused


def test_anonymize_job_on_a_real_clip_reports_progress(
    service: tuple[TestClient, dict[str, str]],
) -> None:
    """A real talking-head clip (3 s, 78 frames), sent as curl sends it, blurred with progress."""
    clip = data_path("videos/KwaiVGI+LivePortrait/assets/examples/driving/d0.mp4")
    client, headers = service
    started = client.post(
        "/api/jobs/anonymize",
        files={"file": ("d0.mp4", clip.read_bytes(), "application/octet-stream")},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    job, seen = progress_seen(client, headers, started.json())
    assert job["state"] == "done", job
    assert_moves(seen)
    summary = job["result"]["summary"]
    assert summary["frames_touched"] >= 70 and summary["check"]["passed"], summary
