"""Background jobs that survive a restart: a SQLite queue, a runner thread per process.

A job is a row of ``service.db`` (kind, state, params, progress, result) plus a
folder ``jobs/<id>/`` holding its uploaded input and its output files.

States: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``failed_check``;
``cancelled`` at any time before the end. ``failed_check`` is a job whose output
was written but failed its own check (an anonymization that a recognizer or an
independent detector still sees through): its result is kept and downloadable,
like that of a ``done`` job, and ``result["check_failed"]`` is true. Every
worker process runs one :class:`JobRunner` thread
that claims the oldest queued job with one atomic ``UPDATE`` (so two
processes never run the same job) and writes a heartbeat every few seconds.
A ``running`` job whose process died (its pid is gone, or its heartbeat is
older than ``job_stale_after`` seconds) is queued again and run from the
start, up to ``job_max_attempts`` times: after a crash or restart a job is
resumed or queued, never lost. A job is acknowledged (202) only after its row
and input file are on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facelens.errors import FaceLensError
from facelens.io.private_files import PRIVATE_DIR_MODE, make_private_dir, make_tree_private
from facelens.service.errors import JobNotFoundError
from facelens.service.paths import hide_server_paths
from facelens.service.state import StateDB

__all__ = ["Job", "JobContext", "JobRunner", "JobStore"]

_HOST = socket.gethostname()
HEARTBEAT_SECONDS = 2.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


FINISHED_STATES = ("done", "failed", "failed_check", "cancelled")
"""States a job never leaves."""
RESULT_STATES = ("done", "failed_check")
"""States of a job whose result files were written and can be downloaded."""


class JobCancelledError(Exception):
    """Raised inside a running job when it was cancelled."""


@dataclass(frozen=True)
class Job:
    """A job as stored. ``progress`` is in [0, 1]; ``result`` and ``error`` are JSON objects."""

    id: str
    kind: str
    state: str
    params: dict[str, Any]
    input_name: str
    key_id: str | None
    progress: float
    message: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def has_result(self) -> bool:
        """The job wrote its output (``done``, or ``failed_check``: written, check failed)."""
        return self.state in RESULT_STATES and bool(self.result)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "params": self.params,
            "input": self.input_name,
            "key_id": self.key_id,
            "progress": round(self.progress, 4),
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.has_result and self.result and self.result.get("file"):
            data["download"] = f"/api/jobs/{self.id}/result"
        return data


_COLUMNS = (
    "id, kind, state, params, input_name, key_id, progress, message, result, error, "
    "attempts, created_at, started_at, finished_at"
)


def _job(row: tuple[object, ...]) -> Job:
    def opt_json(value: object) -> dict[str, Any] | None:
        return None if value is None else dict(json.loads(str(value)))

    def opt(value: object) -> str | None:
        return None if value is None else str(value)

    return Job(
        id=str(row[0]),
        kind=str(row[1]),
        state=str(row[2]),
        params=dict(json.loads(str(row[3]))),
        input_name=str(row[4]),
        key_id=opt(row[5]),
        progress=float(row[6]),  # type: ignore[arg-type]
        message=str(row[7]),
        result=opt_json(row[8]),
        error=opt_json(row[9]),
        attempts=int(row[10]),  # type: ignore[call-overload]
        created_at=str(row[11]),
        started_at=opt(row[12]),
        finished_at=opt(row[13]),
    )


class JobStore:
    """The job queue in ``service.db`` and the job folders under ``jobs_dir``."""

    def __init__(self, db: StateDB, jobs_dir: Path) -> None:
        self._db = db
        self.jobs_dir = jobs_dir
        make_private_dir(jobs_dir)

    def folder(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def input_path(self, job: Job) -> Path:
        return self.folder(job.id) / ("input" + Path(job.input_name).suffix.lower()[:10])

    def public_text(self, job: Job, text: str) -> str:
        """``text`` as a client may see it: the job's input named by the upload's file name,
        no other path of the server (see :mod:`facelens.service.paths`)."""
        return hide_server_paths(text, {self.input_path(job): job.input_name}, [self.jobs_dir])

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its (created) folder, before the job is queued."""
        job_id = uuid.uuid4().hex
        folder = self.folder(job_id)
        make_private_dir(self.jobs_dir)
        folder.mkdir(mode=PRIVATE_DIR_MODE)
        os.chmod(folder, PRIVATE_DIR_MODE)  # whatever the umask
        return job_id, folder

    def enqueue(
        self, job_id: str, kind: str, params: dict[str, Any], input_name: str, key_id: str | None
    ) -> Job:
        """Queue a job whose input is already in its folder (fsynced by the caller)."""
        with self._db.write() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, state, params, input_name, key_id, created_at) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, kind, json.dumps(params), input_name, key_id, _now()),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        rows = self._db.read(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise JobNotFoundError(f"no job {job_id!r}")
        return _job(rows[0])

    def list_jobs(self, key_id: str | None = None, limit: int = 200) -> list[Job]:
        """The newest jobs first; only those started with ``key_id`` when given."""
        if key_id is None:
            rows = self._db.read(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._db.read(
                f"SELECT {_COLUMNS} FROM jobs WHERE key_id = ? ORDER BY created_at DESC LIMIT ?",
                (key_id, limit),
            )
        return [_job(r) for r in rows]

    def claim(self, owner: str) -> Job | None:
        """Take the oldest queued job for ``owner`` (atomic across processes)."""
        with self._db.write() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', owner = ?, heartbeat = ?, "
                "started_at = ?, attempts = attempts + 1, progress = 0, message = 'started' "
                "WHERE id = ?",
                (owner, time.time(), _now(), row[0]),
            )
        return self.get(str(row[0]))

    def heartbeat(self, job_id: str, owner: str) -> None:
        with self._db.write() as db:
            db.execute(
                "UPDATE jobs SET heartbeat = ? WHERE id = ? AND owner = ? AND state = 'running'",
                (time.time(), job_id, owner),
            )

    def report_progress(self, job_id: str, owner: str, fraction: float, message: str) -> bool:
        """Record progress; False when the job is no longer this owner's to run (cancelled)."""
        with self._db.write() as db:
            updated = db.execute(
                "UPDATE jobs SET progress = ?, message = ?, heartbeat = ? "
                "WHERE id = ? AND owner = ? AND state = 'running'",
                (min(max(fraction, 0.0), 1.0), message[:500], time.time(), job_id, owner),
            ).rowcount
        return bool(updated)

    def finish(
        self,
        job_id: str,
        owner: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        state = "failed" if error else "done"
        message = "finished"
        if result is not None and result.get("check_failed"):
            state, message = "failed_check", "written, but its privacy check failed"
        with self._db.write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, result = ?, error = ?, progress = ?, message = ?, "
                "finished_at = ? WHERE id = ? AND owner = ? AND state = 'running'",
                (
                    state,
                    None if result is None else json.dumps(result),
                    None if error is None else json.dumps(error),
                    0.0 if state == "failed" else 1.0,
                    error["message"][:500] if error else message,
                    _now(),
                    job_id,
                    owner,
                ),
            )

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (a running one stops at its next progress report)."""
        job = self.get(job_id)
        if not job.finished:
            with self._db.write() as db:
                db.execute(
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?, message = 'cancelled' "
                    "WHERE id = ? AND state IN ('queued', 'running')",
                    (_now(), job_id),
                )
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Forget a finished job and delete its files."""
        with self._db.write() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def requeue_orphans(self, stale_after: float, max_attempts: int) -> list[str]:
        """Queue again every running job whose process is gone; fail those tried too often."""
        rows = self._db.read(
            "SELECT id, owner, heartbeat, attempts FROM jobs WHERE state = 'running'"
        )
        now = time.time()
        orphans = [
            (str(r[0]), int(r[3]))  # type: ignore[call-overload]
            for r in rows
            if _owner_dead(_opt(r[1])) or now - float(r[2] or 0) > stale_after  # type: ignore[arg-type]
        ]
        for job_id, attempts in orphans:
            with self._db.write() as db:
                if attempts >= max_attempts:
                    db.execute(
                        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, message = ? "
                        "WHERE id = ? AND state = 'running'",
                        (
                            json.dumps(
                                {
                                    "code": "job_abandoned",
                                    "message": f"the job's process died {attempts} times",
                                }
                            ),
                            _now(),
                            "abandoned",
                            job_id,
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE jobs SET state = 'queued', owner = NULL, progress = 0, "
                        "message = 'queued again after its server process stopped' "
                        "WHERE id = ? AND state = 'running'",
                        (job_id,),
                    )
        return [job_id for job_id, _ in orphans]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def owner_name() -> str:
    """This process as a job owner: ``host:pid:random``."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(owner: str | None) -> bool:
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False  # another machine: only the heartbeat can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class JobContext:
    """What a job kind's ``run`` gets: its input, parameters, output folder and progress."""

    job: Job
    input_path: Path
    output_dir: Path
    report: Callable[[float, str], None]

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; raises :class:`JobCancelledError` if the job was cancelled."""
        self.report(fraction, message)


class JobRunner:
    """The background thread of one process: requeue orphans, claim, run, record."""

    def __init__(
        self,
        store: JobStore,
        run_job: Callable[[JobContext], dict[str, Any]],
        *,
        stale_after: float = 30.0,
        max_attempts: int = 3,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.run_job = run_job
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.owner = owner_name()
        self._stop = threading.Event()
        self._current: str | None = None
        self._thread = threading.Thread(target=self._loop, name="facelens-jobs", daemon=True)
        self._beat = threading.Thread(target=self._heartbeat, name="facelens-beat", daemon=True)

    def start(self) -> JobRunner:
        self._thread.start()
        self._beat.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            current = self._current
            if current is not None:
                try:
                    self.store.heartbeat(current, self.owner)
                except Exception:  # the next beat retries; never kill the thread
                    continue

    def _loop(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_sweep > HEARTBEAT_SECONDS:
                    self.store.requeue_orphans(self.stale_after, self.max_attempts)
                    last_sweep = time.monotonic()
                job = self.store.claim(self.owner)
            except Exception:
                job = None
            if job is None:
                self._stop.wait(self.poll_seconds)
                continue
            self.run_one(job)

    def run_private(self, context: JobContext) -> dict[str, Any]:
        """Run the job; then every file in its output is 0600 (encoders write their own mode)."""
        try:
            return self.run_job(context)
        finally:
            make_tree_private(context.output_dir)

    def run_one(self, job: Job) -> None:
        """Run a claimed job to its end and record the outcome."""
        self._current = job.id
        folder = self.store.folder(job.id)
        output = folder / "output"
        shutil.rmtree(output, ignore_errors=True)  # a resumed job starts clean
        make_private_dir(output)

        def report(fraction: float, message: str) -> None:
            if self._stop.is_set() or not self.store.report_progress(
                job.id, self.owner, fraction, message
            ):
                raise JobCancelledError(job.id)

        context = JobContext(job, self.store.input_path(job), output, report)
        try:
            result = self.run_private(context)
        except JobCancelledError:
            pass  # cancelled (state already set) or this process is stopping (requeued later)
        except FaceLensError as error:
            message = self.store.public_text(job, str(error))
            self.store.finish(job.id, self.owner, error={"code": error.code, "message": message})
        except Exception as error:  # a job's bug must not kill the runner
            message = self.store.public_text(job, f"{type(error).__name__}: {error}")
            self.store.finish(job.id, self.owner, error={"code": "job_failed", "message": message})
        else:
            self.store.finish(job.id, self.owner, result=result)
        finally:
            self._current = None
