"""Slow and greedy clients against a real server on loopback (issue 13, item 9).

Stalled sockets come from other loopback addresses (127.0.0.2 ...) than the
normal client (127.0.0.1), as an attacker's would. Every staller is bounded:
it sends a byte a second, stops by itself after :data:`STALL_LIMIT` seconds,
and its sockets are always closed.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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

STALL_LIMIT = 90.0
"""Seconds after which a staller gives up by itself, whatever the server does."""


@dataclass
class Staller:
    """One stalled connection: what it has sent first, then a byte a second."""

    sock: socket.socket
    kind: str  # "head": the request head never ends; "body": the body trickles
    reply: bytearray = field(default_factory=bytearray)
    closed_by_server: bool = False

    def status(self) -> int | None:
        if not self.reply.startswith(b"HTTP/1.1 "):
            return None
        return int(self.reply[9:12])

    def error(self) -> dict[str, str]:
        body = bytes(self.reply).split(b"\r\n\r\n", 1)[1]
        error: dict[str, str] = json.loads(body)["error"]
        return error


def head_of(kind: str, key: str) -> bytes:
    if kind == "head":
        return b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
    return (
        b"POST /api/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
    )


class StallerSwarm:
    """Stalled connections to ``port`` from ``sources``, fed a byte a second by one thread."""

    def __init__(self, port: int, key: str, plan: list[tuple[str, str]]) -> None:
        self.stallers: list[Staller] = []
        for source, kind in plan:
            sock = socket.create_connection(
                ("127.0.0.1", port), timeout=10, source_address=(source, 0)
            )
            sock.sendall(head_of(kind, key))
            sock.setblocking(False)
            self.stallers.append(Staller(sock, kind))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.feed, daemon=True)
        self.thread.start()

    def open(self) -> list[Staller]:
        return [s for s in self.stallers if not s.closed_by_server]

    def feed(self) -> None:
        deadline = time.monotonic() + STALL_LIMIT
        while not self.stop.is_set() and time.monotonic() < deadline and self.open():
            for staller in self.open():
                try:
                    while chunk := staller.sock.recv(65536):
                        staller.reply += chunk
                    staller.closed_by_server = True  # recv returned b"": end of stream
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    staller.closed_by_server = True
                    continue
                try:
                    staller.sock.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    staller.closed_by_server = True
            self.stop.wait(1.0)

    def wait_until_all_closed(self) -> None:
        self.thread.join(STALL_LIMIT + 10)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(STALL_LIMIT + 10)
        for staller in self.stallers:
            staller.sock.close()


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    return tmp_path / "people.db"


@pytest.fixture
def key(gallery: Path) -> str:
    state = StateDB(ServiceSettings(gallery=str(gallery)).state_db)
    try:
        return KeyStore(state).create("slow clients", "admin")[1]
    finally:
        state.close()


@pytest.fixture
def swarm_factory() -> Iterator[list[StallerSwarm]]:
    swarms: list[StallerSwarm] = []
    yield swarms
    for swarm in swarms:
        swarm.close()


def raw_request(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    """Send ``request`` on a new connection and read until the server closes it."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=30, source_address=(source, 0)
    ) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def json_error(reply: bytes) -> dict[str, str]:
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"content-type: application/json" in head.lower(), head
    error: dict[str, str] = json.loads(body)["error"]
    return error


def test_300_stalled_connections_leave_identify_answering_and_are_all_closed_with_408(
    gallery: Path,
    key: str,
    astronaut: np.ndarray,
    tmp_path: Path,
    swarm_factory: list[StallerSwarm],
) -> None:
    probe = {"image": ("probe.jpg", jpeg(astronaut), "image/jpeg")}
    # 10 attacking addresses x 30 connections: each under the per-client cap, 300 in all;
    # 60 trickle a body, then 240 never finish their headers
    plan = [(f"127.0.0.{2 + i % 10}", "body" if i < 60 else "head") for i in range(300)]
    with ServerProcess(
        gallery, extra_args=["--header-timeout", "20"], log_path=tmp_path / "s.log"
    ) as server:
        headers = {"X-API-Key": key}
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as warm:
            assert warm.post("/api/identify", files=probe).status_code == 200  # models warm

        swarm = StallerSwarm(server.port, key, plan)
        swarm_factory.append(swarm)
        with httpx.Client(base_url=server.url, headers=headers, timeout=5) as normal:
            answer = normal.post("/api/identify", files=probe)  # a 5 s timeout is the assertion
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["faces"]) == 1
        still_open = len(swarm.open())
        assert still_open >= 240  # the slow heads were held all along (header timeout 20 s)

        swarm.wait_until_all_closed()
        assert not swarm.open(), f"{len(swarm.open())} stalled connections never closed"
        for staller in swarm.stallers:
            assert staller.status() == 408, (staller.kind, bytes(staller.reply[:200]))
            assert staller.error()["code"] == "request_timeout"
        slow_bodies = [s.error()["message"] for s in swarm.stallers if s.kind == "body"]
        assert all("slower than 1,024 bytes/s" in message for message in slow_bodies)
    print(f"300 stalled connections, {still_open} still open when identify answered 200")


def test_connections_over_the_per_client_cap_get_429_as_json_and_others_are_served(
    gallery: Path, key: str, tmp_path: Path, swarm_factory: list[StallerSwarm]
) -> None:
    with ServerProcess(
        gallery, extra_args=["--max-connections-per-client", "8"], log_path=tmp_path / "s.log"
    ) as server:
        swarm = StallerSwarm(server.port, key, [("127.0.0.2", "head")] * 8)
        swarm_factory.append(swarm)
        refused = raw_request(
            server.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.2"
        )
        assert refused.startswith(b"HTTP/1.1 429"), refused[:200]
        assert b"retry-after: 5" in refused.lower()
        assert json_error(refused)["code"] == "too_many_connections"
        assert httpx.get(server.url + "/api/health", timeout=5).status_code == 200

        swarm.close()  # the address holds no connection any more: it is served again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = raw_request(
                server.port,
                b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "127.0.0.2",
            )
            if reply.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.2)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_requests_over_the_limit_in_progress_get_503_as_json(
    gallery: Path, key: str, tmp_path: Path, swarm_factory: list[StallerSwarm]
) -> None:
    with ServerProcess(
        gallery, extra_args=["--max-requests-in-progress", "1"], log_path=tmp_path / "s.log"
    ) as server:
        swarm = StallerSwarm(server.port, key, [("127.0.0.2", "body")])  # in progress: its body
        swarm_factory.append(swarm)
        busy = raw_request(server.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503"), busy[:200]
        assert json_error(busy)["code"] == "overloaded"


def test_bytes_that_are_not_http_get_400_as_json(gallery: Path, key: str, tmp_path: Path) -> None:
    with ServerProcess(gallery, log_path=tmp_path / "s.log") as server:
        garbage = raw_request(server.port, b"NOT HTTP AT ALL\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400"), garbage[:200]
        assert json_error(garbage)["code"] == "bad_request"
        oversized = raw_request(
            server.port, b"GET /api/health HTTP/1.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
        )
        assert oversized.startswith(b"HTTP/1.1 400"), oversized[:200]
        assert json_error(oversized)["code"] == "bad_request"


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    gallery: Path, key: str, tmp_path: Path
) -> None:
    with (
        ServerProcess(
            gallery, extra_args=["--header-timeout", "1"], log_path=tmp_path / "s.log"
        ) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as silent,
    ):
        assert silent.recv(1024) == b""  # closed by the server, nothing said
