"""``/api/jobs``: start a long job on an upload, watch its progress, download its result.

``POST /api/jobs/{kind}`` (multipart: ``file`` and optional ``params``, a
JSON object) answers 202 once the upload and the queued job are on disk.
Kinds and their parameters: ``GET /api/jobs/kinds`` (see
:mod:`facelens.service.job_kinds`). A key sees the jobs it started; an admin
key sees all.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from facelens.errors import FaceLensError
from facelens.io.private_files import open_private
from facelens.service.auth import QueryKey, Service
from facelens.service.context import ServiceContext
from facelens.service.errors import (
    InvalidRequestError,
    JobFileNotFoundError,
    JobKindNotFoundError,
    JobNotFoundError,
    JobNotReadyError,
    JobRunningError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
)
from facelens.service.job_kinds import (
    JobKind,
    available_kinds,
    check_media,
    check_video,
    check_zip,
)
from facelens.service.jobs import Job, JobRunner
from facelens.service.keys import ApiKey
from facelens.service.limits import require_multipart, upload_label
from facelens.service.multipart import UploadRoute
from facelens.service.paths import hide_paths_in_error
from facelens.service.schemas import ERROR_RESPONSES

__all__ = ["UPLOAD_PREFIX", "router", "start_runner"]

router = APIRouter(
    prefix="/api/jobs", tags=["jobs"], responses=ERROR_RESPONSES, route_class=UploadRoute
)

UPLOAD_PREFIX = "/api/jobs/"
"""Routes under this prefix take the larger upload limit (videos)."""

_TYPES = {
    "video": ("video/", "application/octet-stream"),
    "zip": ("application/zip", "application/x-zip-compressed", "application/octet-stream"),
    "media": ("image/", "video/", "application/octet-stream"),
}


_UPLOAD_WORDS = {"video": "a video", "zip": "a zip of photos", "media": "an image or a video"}


def start_runner(context: ServiceContext) -> JobRunner:
    """The background job thread of this process."""
    settings = context.settings

    def run(job_context: Any) -> dict[str, Any]:
        kind = available_kinds().get(job_context.job.kind)
        if kind is None:
            raise JobKindNotFoundError(f"this server cannot run {job_context.job.kind!r} jobs")
        return kind.run(job_context, context)

    return JobRunner(
        context.jobs,
        run,
        stale_after=settings.job_stale_after,
        max_attempts=settings.job_max_attempts,
    ).start()


def _visible(job: Job, key: ApiKey) -> Job:
    if key.role != "admin" and job.key_id != key.id:
        raise JobNotFoundError(f"no job {job.id!r}")  # never reveal others' jobs exist
    return job


@router.get("/kinds")
def job_kinds(key: QueryKey) -> list[dict[str, Any]]:
    """The kinds of job this server runs, with their parameters."""
    return [kind.describe() for kind in available_kinds().values()]


@router.get("")
def list_jobs(key: QueryKey, context: Service) -> list[dict[str, Any]]:
    """Jobs, newest first: this key's own, or every job for an admin key."""
    jobs = context.jobs.list_jobs(None if key.role == "admin" else key.id)
    return [job.to_dict() for job in jobs]


def known_kind(kind: str) -> None:
    """First of all: a path that names no kind this server runs takes no POST (405)."""
    if kind not in available_kinds():
        names = ", ".join(available_kinds()) or "none"
        raise JobKindNotFoundError(f"no job kind {kind!r}; this server runs: {names}")


@router.post(
    "/{kind}",
    status_code=202,
    dependencies=[Depends(known_kind), Depends(require_multipart)],
    include_in_schema=False,  # one operation per kind in the schema (service/openapi.py)
)
async def start_job(
    key: QueryKey,
    context: Service,
    kind: str,
    file: Annotated[UploadFile, File(description="The input: a video, or a zip of photos")],
    params: Annotated[
        str, Form(max_length=10_000, description="JSON object of the kind's parameters")
    ] = "{}",
) -> dict[str, Any]:
    """Queue a job on an upload; poll ``GET /api/jobs/{id}`` for progress."""
    job_kind = available_kinds().get(kind)
    if job_kind is None:
        names = ", ".join(available_kinds()) or "none"
        raise JobKindNotFoundError(f"no job kind {kind!r}; this server runs: {names}")
    if not key.allows(job_kind.role):
        raise PermissionDeniedError(f"{kind} jobs need the role {job_kind.role!r} or above")
    try:
        raw = json.loads(params or "{}")
    except ValueError as exc:
        raise InvalidRequestError(f"params must be a JSON object ({exc})") from exc
    if not isinstance(raw, dict):
        raise InvalidRequestError("params must be a JSON object")
    checked = job_kind.check_params(raw)
    context.lens.operating_point(checked.get("fmr"), checked.get("threshold"))  # 422 now, not later
    declared = (file.content_type or "application/octet-stream").lower()
    if not declared.startswith(_TYPES[job_kind.upload]):
        raise UnsupportedMediaTypeError(
            f"{kind} takes {_UPLOAD_WORDS[job_kind.upload]}, not {declared!r}"
        )
    label = upload_label(file, "input")
    job_id, folder = context.jobs.new_folder()
    try:
        info = await run_in_threadpool(_save_and_check, file, folder, label, job_kind, context)
        job = context.jobs.enqueue(job_id, kind, checked, label, key.id)
    except FaceLensError as error:  # named as the upload, never as the server's file
        shutil.rmtree(folder, ignore_errors=True)
        saved = folder / ("input" + Path(label).suffix.lower()[:10])
        raise hide_paths_in_error(error, {saved: label}, [folder]) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    await context.audit.record_in_thread(
        key, "start_job", job.id, {"kind": kind, "input": label, **info}
    )
    return job.to_dict()


def _save_and_check(
    upload: UploadFile, folder: Path, label: str, kind: JobKind, context: ServiceContext
) -> dict[str, Any]:
    settings = context.settings
    target = folder / ("input" + Path(label).suffix.lower()[:10])
    upload.file.seek(0)
    with open_private(target) as out:  # mode 0600: an upload may show faces
        shutil.copyfileobj(upload.file, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    if target.stat().st_size == 0:
        raise InvalidRequestError("the uploaded file is empty")
    if kind.upload == "zip":
        return {"photos": len(check_zip(target, settings.max_upload_bytes * 4))}
    if kind.upload == "media":  # an image or a video: the bytes say which
        return check_media(target, label, settings.max_video_seconds, settings.max_pixels)
    return {"video": check_video(target, settings.max_video_seconds, settings.max_pixels)}


@router.get("/{job_id}")
def get_job(job_id: str, key: QueryKey, context: Service) -> dict[str, Any]:
    """A job's state, progress (0 to 1), message, and result summary once done."""
    return _visible(context.jobs.get(job_id), key).to_dict()


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/json": {}, "application/octet-stream": {}},
            "description": "The result: JSON, CSV, HTML, a video or an image "
            "(every media type is listed in the served schema)",
        }
    },
)
def job_result(
    job_id: str,
    key: QueryKey,
    context: Service,
    file: Annotated[
        str | None,
        Query(max_length=100, description="One of the job's result.files (default: the main one)"),
    ] = None,
) -> FileResponse:
    """Download a finished job's result file (or another of its files, by name)."""
    job = _visible(context.jobs.get(job_id), key)
    if not job.has_result or not job.result or not job.result.get("file"):
        raise JobNotReadyError(f"job {job.id} is {job.state}; it has no result to download")
    names = [str(n) for n in job.result.get("files", [])] or [str(job.result["file"])]
    name = str(job.result["file"]) if file is None else file
    if name not in names:
        raise JobFileNotFoundError(f"job {job.id} has no file {name!r}; it has: {', '.join(names)}")
    path = context.jobs.folder(job.id) / "output" / Path(name).name
    if not path.is_file():
        raise JobNotReadyError(f"the result of job {job.id} is no longer on disk")
    context.audit.record(key, "download_result", job.id, {"kind": job.kind, "file": path.name})
    return FileResponse(
        path,
        media_type=str(job.result.get("media_type", "application/octet-stream"))
        if name == job.result["file"]
        else _media_type(path),
        filename=f"{job.kind}-{job.id[:8]}{path.suffix}",
    )


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, key: QueryKey, context: Service) -> dict[str, Any]:
    """Cancel a queued or running job (a running one stops at its next progress report); the
    job stays listed as ``cancelled`` until deleted. A finished job is left as it is."""
    job = _visible(context.jobs.get(job_id), key)
    if job.finished:
        return job.to_dict()
    cancelled = context.jobs.cancel(job.id)
    context.audit.record(key, "cancel_job", job.id, {"kind": job.kind})
    return cancelled.to_dict()


@router.delete("/{job_id}")
def delete_job(job_id: str, key: QueryKey, context: Service) -> dict[str, Any]:
    """Delete a finished job with its files (409 ``job_running`` while it is queued or
    running: cancel it first)."""
    job = _visible(context.jobs.get(job_id), key)
    if not job.finished:
        raise JobRunningError(
            f"job {job.id} is still {job.state}: cancel it first "
            f"(POST /api/jobs/{job.id}/cancel), then delete it"
        )
    context.jobs.delete(job.id)
    context.audit.record(key, "delete_job", job.id, {"kind": job.kind})
    return {"deleted": job.id}


def _media_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
