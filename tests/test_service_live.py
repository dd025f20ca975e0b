"""The service as real servers in child processes on loopback (random free ports, always torn down).

* concurrency: what one server process writes, another sees on its very next request;
* crash safety: ``kill -9`` during concurrent enrollments loses no acknowledged one,
  leaves none half-written, and both SQLite files pass ``PRAGMA integrity_check``;
* jobs survive a ``kill -9`` of the server and finish after the restart;
* a request body that stalls gets 408, not a hung worker.
"""

from __future__ import annotations

import io
import socket
import sqlite3
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facelens.service.keys import KeyStore
from facelens.service.launcher import ServerProcess
from facelens.service.settings import ServiceSettings
from facelens.service.state import StateDB

pytestmark = pytest.mark.slow


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def admin_key(gallery: Path) -> str:
    state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
    try:
        return KeyStore(state).create("live test", "admin")[1]
    finally:
        state.close()


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    return tmp_path / "people.db"


@pytest.fixture
def key(gallery: Path) -> str:
    return admin_key(gallery)


@pytest.fixture
def astronaut_jpeg(astronaut: np.ndarray) -> bytes:
    return jpeg(astronaut)


def client(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=120)


@pytest.fixture
def two_servers(gallery: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two single-worker servers on one gallery: two processes, two connections to the file."""
    with (
        ServerProcess(gallery, log_path=tmp_path / "a.log") as first,
        ServerProcess(gallery, log_path=tmp_path / "b.log") as second,
    ):
        yield first, second


def test_writes_through_one_process_are_seen_by_the_next_identification_in_another(
    two_servers: tuple[ServerProcess, ServerProcess], key: str, astronaut: np.ndarray
) -> None:
    writer_server, reader_server = two_servers
    probe = {"image": ("probe.jpg", jpeg(astronaut, 75), "image/jpeg")}
    with client(writer_server, key) as writer, client(reader_server, key) as reader:
        before = reader.post("/api/identify", files=probe)
        assert (
            before.json()["faces"][0]["identity"] is None
        )  # the reader has cached the empty gallery
        lags = []
        enrolled = writer.post(
            "/api/people",
            data={"name": "Eileen"},
            files={"photos": ("a.jpg", jpeg(astronaut), "image/jpeg")},
        )
        acknowledged = time.perf_counter()
        assert enrolled.status_code == 201
        seen = reader.post("/api/identify", files=probe)  # the very next request, no retry
        lags.append(time.perf_counter() - acknowledged)
        assert writer.headers is not None
        assert seen.headers["x-facelens-worker"] != enrolled.headers["x-facelens-worker"]
        assert seen.json()["faces"][0]["identity"] == "Eileen"

        assert (
            writer.patch("/api/people/Eileen", json={"name": "Eileen Collins"}).status_code == 200
        )
        assert (
            reader.post("/api/identify", files=probe).json()["faces"][0]["identity"]
            == "Eileen Collins"
        )
        assert writer.delete("/api/people/Eileen Collins").status_code == 200
        assert reader.post("/api/identify", files=probe).json()["faces"][0]["identity"] is None
        print(f"enroll acknowledged -> identified in the other process: {lags[0] * 1000:.0f} ms")


def test_real_people_enrolled_in_one_process_are_told_apart_in_another(
    two_servers: tuple[ServerProcess, ServerProcess], key: str, knn_root: Path
) -> None:
    writer_server, reader_server = two_servers
    with client(writer_server, key) as writer, client(reader_server, key) as reader:
        for name in ("obama", "biden"):
            photos = [
                ("photos", (p.name, p.read_bytes(), "image/jpeg"))
                for p in sorted((knn_root / "train" / name).glob("*.jpg"))
            ]
            assert writer.post("/api/people", data={"name": name}, files=photos).status_code == 201
            seen = reader.post(
                "/api/identify",
                files={
                    "image": (
                        "t.jpg",
                        (knn_root / "test" / "obama_and_biden.jpg").read_bytes(),
                        "image/jpeg",
                    )
                },
            ).json()
            assert name in {f["identity"] for f in seen["faces"]}


def noisy_jpeg(pixels: np.ndarray, seed: tuple[int, ...]) -> bytes:
    """``pixels`` with a little noise of its own, as JPEG: the same face, another photo."""
    noise = np.random.default_rng(seed).integers(-6, 7, pixels.shape)
    return jpeg(np.clip(pixels.astype(np.int16) + noise, 0, 255).astype(np.uint8), 90)


def test_kill_9_during_concurrent_enrollments_loses_no_acknowledged_one(
    gallery: Path, key: str, astronaut: np.ndarray, tmp_path: Path
) -> None:
    acknowledged: dict[str, int] = {}  # name -> templates acknowledged
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []
    interrupted: list[str] = []  # requests in flight when the server was killed
    server = ServerProcess(gallery, workers=2, log_path=tmp_path / "server.log").start()

    def enroll_forever(worker: int) -> None:
        with client(server, key) as http:
            for index in range(10_000):
                if stop.is_set():
                    return
                name = f"person-{worker}-{index}"
                # every photo another shot of the one face (never the same photo twice, which
                # enrollment refuses), forced past the look-alike check (all are one face)
                files = [
                    (
                        "photos",
                        (
                            f"{name}-{k}.jpg",
                            noisy_jpeg(astronaut, (worker, index, k)),
                            "image/jpeg",
                        ),
                    )
                    for k in range(2)
                ]
                try:
                    response = http.post(
                        "/api/people", data={"name": name, "force": "true"}, files=files
                    )
                except httpx.HTTPError:
                    interrupted.append(name)
                    return  # the server died mid-request: this one was never acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged[name] = response.json()["person"]["templates"]
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=enroll_forever, args=(i,)) for i in range(6)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 300
        while len(acknowledged) < 20 and time.monotonic() < deadline and not failures:
            time.sleep(0.05)
        server.kill()  # SIGKILL to the master and both workers while requests are in flight
        stop.set()
        for thread in threads:
            thread.join(60)
    finally:
        stop.set()
        server.stop()
    assert not failures, failures[:3]
    assert len(acknowledged) >= 20
    assert interrupted, "the kill should land while enrollments are in flight"

    for path in (gallery, ServiceSettings(gallery=str(gallery)).state_db):
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path

    with (
        ServerProcess(gallery, log_path=tmp_path / "restart.log") as restarted,
        client(restarted, key) as http,
    ):
        people = {p["name"]: p["templates"] for p in http.get("/api/people").json()}
        for name, templates in acknowledged.items():
            assert people.get(name) == templates == 2, name
        assert all(count == 2 for count in people.values()), "a half-written enrollment"
        for name in list(acknowledged)[:5]:
            for photo in http.get(f"/api/people/{name}").json()["photos"]:
                crop = http.get(f"/api/people/{name}/photos/{photo['id']}")
                assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    print(
        f"acknowledged {len(acknowledged)}, {len(interrupted)} in flight at the kill; "
        f"after restart {len(people)} people, all whole"
    )


def test_a_job_survives_kill_9_and_finishes_after_the_restart(
    gallery: Path, key: str, astronaut: np.ndarray, tmp_path: Path
) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for index in range(24):
            zipped.writestr(f"photo-{index:02d}.jpg", jpeg(astronaut, 60 + index))
    with ServerProcess(gallery, log_path=tmp_path / "a.log") as server, client(server, key) as http:
        started = http.post(
            "/api/jobs/identify_photos",
            files={"file": ("photos.zip", archive.getvalue(), "application/zip")},
        )
        assert started.status_code == 202
        job_id = started.json()["id"]
        server.kill()
    with ServerProcess(gallery, log_path=tmp_path / "b.log") as server, client(server, key) as http:
        for _ in range(1200):
            job = http.get(f"/api/jobs/{job_id}").json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.25)
        assert job["state"] == "done", job
        assert job["result"]["summary"]["photos"] == 24
        result = http.get(f"/api/jobs/{job_id}/result").json()
        assert len(result["photos"]) == 24 and all(len(p["faces"]) == 1 for p in result["photos"])


def test_a_stalled_request_body_gets_408_and_the_server_keeps_serving(
    gallery: Path, key: str, tmp_path: Path
) -> None:
    with ServerProcess(
        gallery, extra_args=["--body-timeout", "1"], log_path=tmp_path / "s.log"
    ) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
            raw.sendall(
                b"POST /api/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode() + b"\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
            )
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert httpx.get(server.url + "/api/health").status_code == 200


def test_one_server_with_two_workers_the_other_worker_sees_an_enrollment_at_once(
    gallery: Path, key: str, astronaut: np.ndarray, tmp_path: Path
) -> None:
    probe = {"image": ("probe.jpg", jpeg(astronaut, 75), "image/jpeg")}
    fresh = {"X-API-Key": key, "Connection": "close"}  # a new connection each time: either worker
    with ServerProcess(gallery, workers=2, log_path=tmp_path / "s.log") as server:
        with httpx.Client(base_url=server.url, headers=fresh, timeout=120) as http:
            enrolled = http.post(
                "/api/people",
                data={"name": "Eileen"},
                files={"photos": ("a.jpg", jpeg(astronaut), "image/jpeg")},
            )
            assert enrolled.status_code == 201
            writer = enrolled.headers["x-facelens-worker"]
            answers: list[tuple[str, str | None]] = []

            def identify() -> None:
                with httpx.Client(base_url=server.url, headers=fresh, timeout=120) as own:
                    seen = own.post("/api/identify", files=probe)
                    identity = seen.json()["faces"][0]["identity"]
                    answers.append((seen.headers["x-facelens-worker"], identity))

            for _ in range(10):  # concurrent requests: a busy worker leaves the next to the other
                batch = [threading.Thread(target=identify) for _ in range(4)]
                for thread in batch:
                    thread.start()
                for thread in batch:
                    thread.join()
                if any(worker != writer for worker, _ in answers):
                    break
        assert any(worker != writer for worker, _ in answers), "every request went to one worker"
        assert all(identity == "Eileen" for _, identity in answers), answers
