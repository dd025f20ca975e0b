"""Scanning into the library from the service: the folders a server may read, and the
``library_scan`` job kind.

A server reads only the folders it was started with (``facelens serve
--library-root DIR``, repeatable). A folder asked for is refused (403) unless
its real path (symlinks resolved) is inside one of them; inside an allowed
folder, a file whose real path leads outside the roots (a symlink) is not
read and is listed among the scan's failures. Messages show the path as the
user wrote it, never the resolved one.

A ``library_scan`` job reads either a folder (``{"folder": PATH}``, queued by
``POST /api/library/scan``) or an upload (one photo, one video, or a zip of
them, unpacked into the service's state folder; ``POST /api/library/scan/upload``
or ``POST /api/jobs/library_scan``). The job reads every pending item of the library, then groups the
new faces; unreadable files are counted and listed in its result, never stop
it. A job that a restart interrupted is queued again by the job runner and
continues with the items still pending.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from facelens.ingest.library import MAX_FAILURES_LISTED, Library
from facelens.ingest.process import ItemResult, Processor
from facelens.ingest.sources import VIDEO_SUFFIXES, WorkItem, kind_of
from facelens.io.walk import IMAGE_SUFFIXES
from facelens.service.context import ServiceContext
from facelens.service.errors import InvalidRequestError, PermissionDeniedError, ServiceError
from facelens.service.job_kinds import JobKind, check_zip, register
from facelens.service.jobs import JobContext

__all__ = ["LIBRARY_SCAN", "check_folder", "media_file", "shown"]

UPLOADS = "library-uploads"
"""Uploads to the library are kept under ``<state dir>/library-uploads/<job id>/``."""
UPLOAD_LABEL = "upload"


class FolderNotFoundError(ServiceError):
    """A folder to scan that is not there (inside the library folders)."""

    code = "folder_not_found"
    status = 404


class PathNotAllowedError(PermissionDeniedError):
    """A path outside the folders this server may read."""

    code = "path_not_allowed"


class MediaNotFoundError(ServiceError):
    """An item of the library whose file is no longer where it was scanned."""

    code = "media_not_found"
    status = 404


def roots_of(context: ServiceContext) -> list[Path]:
    """The library roots, resolved."""
    return [Path(root).expanduser().resolve() for root in context.settings.library_roots]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def check_folder(folder: str, context: ServiceContext) -> Path:
    """The folder ``folder`` (absolute, or relative to a root) as the path to walk, after
    checking that its real path is inside a library root; errors name ``folder`` only."""
    roots = roots_of(context)
    if not roots:
        raise PathNotAllowedError(
            "this server may not read any folder: start it with --library-root DIR"
        )
    if "\x00" in folder or not folder.isprintable():
        raise InvalidRequestError("a folder's path cannot hold control characters")
    given = Path(folder).expanduser()
    candidates = (
        [given]
        if given.is_absolute()
        else [Path(r) / given for r in context.settings.library_roots]
    )
    outside = 0  # candidates whose real path leads out of the roots (``..``, a symlink)
    for candidate in candidates:
        try:
            real = candidate.resolve()
            if not _inside(real, roots):
                outside += 1
                continue
            if real.is_dir():
                return candidate
            exists = real.exists()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long
            continue
        if exists:
            raise InvalidRequestError(f"{folder}: not a folder")
    if outside == len(candidates):  # whether or not it exists there: never said
        raise PathNotAllowedError(f"{folder}: outside the folders this server may read")
    where = "library folder" if len(roots) == 1 else "library folders"
    raise FolderNotFoundError(f"{folder}: no such folder in the {where}")


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path


def folder_items(folder: Path, roots: list[Path]) -> tuple[list[WorkItem], list[str]]:
    """Photos and videos under ``folder`` (sorted), and those refused because their real
    path is outside ``roots``. Paths keep the folder's form as given."""
    wanted = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    items: list[WorkItem] = []
    refused: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in wanted or not path.is_file():
            continue
        if _inside(_real(path), roots):
            items.append(WorkItem(str(path), kind_of(path)))
        else:
            refused.append(str(path))
    return items, refused


def uploads_dir(context: ServiceContext) -> Path:
    return context.settings.state_dir / UPLOADS


def shown(source: str, context: ServiceContext) -> str:
    """A stored path as the user may see it: an upload as ``upload/<job>/<name>``."""
    prefix = str(uploads_dir(context)) + "/"
    return source.replace(prefix, UPLOAD_LABEL + "/")


def media_file(item_id: int, source: str, context: ServiceContext) -> Path:
    """The file of library item ``item_id`` (stored path ``source``) to send to a browser:
    only while its real path is still inside a library root (or the service's uploads) and
    it is a regular file. Errors name the item, never a server path."""
    path = Path(source)
    real = _real(path)
    allowed = [*roots_of(context), uploads_dir(context).resolve()]
    if not _inside(real, allowed):
        raise PathNotAllowedError(
            f"item {item_id}: its file is now outside the folders this server may read"
        )
    try:
        regular = real.is_file()
    except OSError:
        regular = False
    if not regular:
        raise MediaNotFoundError(f"item {item_id}: its file is no longer there")
    return real


def unpack_upload(job: JobContext, context: ServiceContext) -> tuple[Path, list[tuple[str, str]]]:
    """The uploaded photo, video or zip of them, as a folder of files under the uploads, and
    the zip's members left packed: ``(member name, why)``.

    A member is unpacked only if it is a photo or video by its name and within the size one
    upload of its kind may have (a photo: ``max_request_bytes``, a video:
    ``max_upload_bytes``), so a small zip of a huge file never fills the disk.
    """
    target = uploads_dir(context) / job.job.id
    target.mkdir(parents=True, exist_ok=True)
    if job.input_path.suffix.lower() != ".zip":
        name = PurePosixPath(job.job.input_name).name or "upload" + job.input_path.suffix
        shutil.copyfile(job.input_path, target / name)
        return target, []
    settings = context.settings
    members = check_zip(job.input_path, settings.max_upload_bytes * 4)
    left: list[tuple[str, str]] = []
    with zipfile.ZipFile(job.input_path) as archive:
        for number, member in enumerate(members):
            inner = PurePosixPath(member.filename.replace("\\", "/"))
            suffix = inner.suffix.lower()
            if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                left.append((member.filename, "not a photo or video by its name"))
                continue
            limit = (
                settings.max_request_bytes
                if suffix in IMAGE_SUFFIXES
                else settings.max_upload_bytes
            )
            if member.file_size > limit:
                left.append(
                    (
                        member.filename,
                        f"unpacks to {member.file_size:,} bytes; the limit is {limit:,}",
                    )
                )
                continue
            # No member path is trusted: each is flattened to "<number>_<base name>". The zip
            # module stops reading a member at its declared size.
            out = target / f"{number:05d}_{inner.name}"
            with archive.open(member) as source, out.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1024 * 1024)
    return target, left


class _SlotExecutor:
    """Reads batches with the lens's models, one analysis slot per batch, so a scan never
    keeps the server's requests waiting for long."""

    def __init__(self, library: Library, context: ServiceContext) -> None:
        self.processor = Processor(
            library.options(context.settings.threads), library.clusters.pipeline
        )
        self.context = context

    def map(self, work: Iterator[list[WorkItem]]) -> Iterator[list[ItemResult]]:
        for batch in work:
            yield self.context.analysing(partial(self._run, batch))

    def _run(self, batch: list[WorkItem]) -> list[ItemResult]:
        return self.processor.run([(item, None) for item in batch])

    def close(self) -> None:
        pass


def run_library_scan(job: JobContext, context: ServiceContext) -> dict[str, Any]:
    """The ``library_scan`` job (see the module docstring)."""
    folder = job.params.get("folder")
    left_packed: list[tuple[str, str]] = []
    if folder:
        path = check_folder(str(folder), context)
        items, refused = folder_items(path, roots_of(context))
    else:
        path, left_packed = unpack_upload(job, context)
        items, refused = folder_items(path, [uploads_dir(context).resolve()])
    library = context.library
    job.progress(0.0, f"{len(items)} files found")

    def step(done: int, total: int, source: str) -> None:
        if done % 5 == 0 or done == total:
            job.progress(min(0.95, done / max(total, 1)), f"{done} of {total} files read")

    summary = library.scan(items, executor=_SlotExecutor(library, context), progress=step)
    job.progress(0.97, "grouping done")
    report = summary.to_dict(lambda text: shown(text, context))
    report["failures"] += [
        {"source": shown(s, context), "error": "outside the folders this server may read"}
        for s in refused[:MAX_FAILURES_LISTED]
    ]
    report["failed"] += len(refused)
    report["failures"] += [
        {"source": f"{UPLOAD_LABEL}/{job.job.id}/{name}", "error": why}
        for name, why in left_packed[:MAX_FAILURES_LISTED]
    ]
    report["failed"] += len(left_packed)
    report["folder"] = str(folder) if folder else f"{UPLOAD_LABEL}/{job.job.id}"
    report["files"] = len(items)
    out = job.output_dir / "scan.json"
    out.write_text(json.dumps(report, indent=2))
    return {"file": out.name, "media_type": "application/json", "summary": report}


LIBRARY_SCAN = register(
    JobKind(
        name="library_scan",
        description="Scan an uploaded photo or video into the library, then group the new "
        "faces; result: counts and every file that failed. A zip of photos and videos goes "
        "to POST /api/library/scan/upload, a folder on the server (under its --library-root) "
        "to POST /api/library/scan",
        upload="media",
        run=run_library_scan,
        role="enroll",
        elsewhere={
            "folder": "a folder on the server is scanned with POST /api/library/scan "
            '{"folder": ...}'
        },
    )
)
