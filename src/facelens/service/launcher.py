"""Run ``facelens serve`` in a child process on loopback: for tests, benchmarks and scripts.

>>> with ServerProcess(gallery="people.db", workers=2) as server:   # doctest: +SKIP
...     httpx.get(server.url + "/api/health")

The server gets a free port on 127.0.0.1, its own process group (so
:meth:`ServerProcess.kill` can ``SIGKILL`` the master and every worker at
once, as a crash would), and is always stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["ServerProcess"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``facelens --gallery G serve`` as a child process group.

    Args:
        gallery: the gallery file.
        workers: uvicorn worker processes.
        port: the port (default: a free one).
        extra_args: more ``serve`` options, e.g. ``["--max-request-mb", "1"]``.
        global_args: more ``facelens`` options before ``serve``, e.g. ``["--max-side", "16"]``.
        env: extra environment variables.
        log_path: where the server's output goes (default: discarded).
        startup_timeout: seconds to wait for ``/api/health`` to answer.
    """

    def __init__(
        self,
        gallery: str | Path,
        *,
        workers: int = 1,
        port: int | None = None,
        extra_args: list[str] | None = None,
        global_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.gallery = str(gallery)
        self.workers = workers
        self.port = port or free_port()
        self.extra_args = extra_args or []
        self.global_args = global_args or []
        self.env = env or {}
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "facelens.cli.main",
            "--gallery",
            self.gallery,
            *self.global_args,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            *self.extra_args,
        ]
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,  # its own process group: kill() reaches the workers
            )
        finally:
            if output is not subprocess.DEVNULL:
                output.close()  # type: ignore[union-attr]
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Wait until every worker can answer (a few health checks in a row succeed)."""
        deadline = time.monotonic() + self.startup_timeout
        successes = 0
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as response:
                    successes = successes + 1 if response.status == 200 else 0
            except (urllib.error.URLError, OSError):
                successes = 0
            if successes >= 3 * self.workers:
                return
            time.sleep(0.1 if successes else 0.3)
        self.stop()
        raise RuntimeError(
            f"the server did not answer on {self.url} within {self.startup_timeout} s"
        )

    def kill(self) -> None:
        """``SIGKILL`` the whole server (master and workers) at once, like a crash."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop gracefully (SIGTERM), then kill what is left."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers of the group
        if self.process.poll() is None:
            self.process.wait(timeout=30)
        self.process = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
