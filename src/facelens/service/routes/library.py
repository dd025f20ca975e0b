"""``/api/library``: scan folders and uploads into the library, name and correct its groups
of unknown faces, see where a person appears, search it by photo.

Roles: ``query`` reads (groups, crops, appearances, search), ``enroll`` scans,
names and corrects, ``admin`` erases (``DELETE /api/people/{name}`` reaches
the library too). Paths in answers are the ones the user gave (uploads show as
``upload/<job>/<name>``). See :mod:`facelens.ingest.library` for what the
library holds and :mod:`facelens.service.library_scan` for what a scan may read.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from facelens.errors import ClusterFaceNotFoundError
from facelens.ingest.library import Library, LibraryAppearance, person_threshold
from facelens.match.decide import main_face
from facelens.service.auth import EnrollKey, QueryKey, Service
from facelens.service.context import ServiceContext
from facelens.service.errors import InvalidRequestError, UnsupportedMediaTypeError
from facelens.service.job_kinds import check_video, check_zip
from facelens.service.keys import ApiKey
from facelens.service.library_scan import LIBRARY_SCAN, check_folder, media_file, shown
from facelens.service.limits import decode_image, read_image, require_multipart, upload_label
from facelens.service.multipart import UploadRoute
from facelens.service.routes.common import Fmr, PersonName, Threshold, clean_name
from facelens.service.schemas import ERROR_RESPONSES

__all__ = ["UPLOAD_PATH", "router"]

router = APIRouter(tags=["library"], responses=ERROR_RESPONSES, route_class=UploadRoute)

UPLOAD_PATH = "/api/library/scan/upload"
"""The upload route takes the larger upload limit (videos, zips)."""
SAMPLES = 6
MAX_ID = 2**53
GroupId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A group's id")]
FaceId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A face's id in the library")]
ItemId = Annotated[
    int, PathParam(ge=1, le=MAX_ID, description="A photo or video's id in the library")
]
IdItem = Annotated[int, Field(ge=1, le=MAX_ID)]


# --- shapes --------------------------------------------------------------------------------


class ScanRequest(BaseModel):
    folder: str = Field(
        min_length=1, max_length=4096, description="A folder under one of the --library-root"
    )


class JobStarted(BaseModel):
    job: str = Field(description="The job's id: follow it at GET /api/jobs/{job}")
    state: str = Field(description="queued")
    status_url: str


class FaceSample(BaseModel):
    face: int = Field(description="The face's id in the library")
    crop_url: str = Field(description="Its aligned crop, JPEG")


class LooksLike(BaseModel):
    name: str = Field(description="The enrolled person the group looks like")
    faces: int = Field(description="How many of the group's faces are identified as them")
    of: int = Field(description="The group's faces")
    score: float = Field(description="The highest cosine of those faces with the person")


class GroupSummary(BaseModel):
    id: int
    faces: int = Field(description="Faces in the group")
    hidden: bool
    samples: list[FaceSample] = Field(description="Its best faces (highest quality first)")
    looks_like: LooksLike | None = Field(
        description="The enrolled person at least half of its faces are identified as, at "
        "the server's operating point (a suggestion: only naming the group links it)"
    )


class LibraryFace(BaseModel):
    face: int
    source: str = Field(description="The photo or video, as the user named it")
    kind: str = Field(description="image or video")
    box: list[float] = Field(description="[x, y, width, height] in pixels of the photo or frame")
    frame_index: int | None = Field(description="The video frame (null for a photo)")
    time: float | None = Field(description="Seconds into the video (null for a photo)")
    quality: float
    crop_url: str


class GroupDetail(BaseModel):
    id: int
    name: str | None
    hidden: bool
    faces: list[LibraryFace]


class LibraryStats(BaseModel):
    library: str = Field(
        description="Where the library is: its file's base name, or the gallery's database"
    )
    pending: int
    done: int
    failed: int
    faces: int
    groups: int
    roots: int = Field(description="How many folders this server may scan")
    root_folders: list[str] = Field(
        description="The folders this server may scan (its --library-root), as it was given "
        "them; a folder to scan is one of them or inside one, absolute or relative to it"
    )


class NameRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The person's name")


class GroupNameRequest(NameRequest):
    force: bool = Field(
        default=False,
        description="Name the group even when its faces look like another enrolled person "
        "(otherwise 409 matches_other_person)",
    )


class HideRequest(BaseModel):
    hidden: bool = Field(default=True, description="true hides the group, false shows it again")


class MergeRequest(BaseModel):
    groups: list[IdItem] = Field(min_length=2, max_length=100, description="Groups of one person")


class FacesRequest(BaseModel):
    faces: list[IdItem] = Field(min_length=1, max_length=1000)


class MoveRequest(FacesRequest):
    group: int = Field(ge=1, le=MAX_ID, description="The group the faces belong to")


class FacesToPersonRequest(FacesRequest):
    name: str = Field(
        min_length=1, max_length=200, description="The person they are (known, or new)"
    )


class Correction(BaseModel):
    """What a correction changed (its fields depend on the correction)."""

    model_config = {"extra": "allow"}

    group: int | None = None


class UndoResult(BaseModel):
    undone: str | None = Field(description="The correction undone, or null when none was left")


class Appearance(BaseModel):
    face: int
    item: int = Field(description="The photo or video's id in the library")
    source: str = Field(description="The photo or video, as the user named it")
    kind: str = Field(description="image or video")
    box: list[float] = Field(description="[x, y, width, height] in pixels of the photo or frame")
    frame_index: int | None
    time: float | None = Field(description="Seconds into the video; null for a photo")
    how: str = Field(description="linked (in their named group) or identified (by the gallery)")
    score: float | None = Field(description="Cosine score of an identified face")
    crop_url: str


class RejectedAppearance(BaseModel):
    face: int
    not_: str = Field(alias="not", description="The person the face is not")


class SearchHit(BaseModel):
    face: int | None
    item: int | None = Field(description="The photo or video's id in the library")
    kind: str | None = Field(description="image or video")
    crop_url: str | None = Field(description="The face's aligned crop, JPEG")
    source: str
    box: list[float]
    frame_index: int | None
    time: float | None
    score: float = Field(description="Cosine similarity")
    llr: float | None = Field(description="log10 likelihood ratio from the calibration")
    score_fmr: float = Field(description="Share of impostor pairs scoring at least this")
    match: bool = Field(description="At or above the operating point's threshold")


class SearchResult(BaseModel):
    threshold: float
    fmr: float
    faces_searched: int
    appearances: list[SearchHit]


# --- helpers -------------------------------------------------------------------------------


def _crop_url(face: int) -> str:
    return f"/api/library/faces/{face}/crop"


def _appearance(found: LibraryAppearance, context: ServiceContext) -> Appearance:
    return Appearance(
        face=found.face,
        item=found.item,
        source=shown(found.source, context),
        kind=found.kind,
        box=found.box,
        frame_index=found.frame_index,
        time=found.time,
        how=found.how,
        score=found.score,
        crop_url=_crop_url(found.face),
    )


async def _queue_scan(
    context: ServiceContext,
    key: ApiKey,
    params: dict[str, Any],
    input_name: str,
    upload: UploadFile | None,
) -> JobStarted:
    job_id, folder = context.jobs.new_folder()
    try:
        if upload is not None:
            await run_in_threadpool(_save_upload, upload, folder, input_name, context)
        job = context.jobs.enqueue(job_id, LIBRARY_SCAN.name, params, input_name, key.id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    await context.audit.record_in_thread(
        key, "library_scan", job.id, {**params, "input": input_name}
    )
    return JobStarted(job=job.id, state=job.state, status_url=f"/api/jobs/{job.id}")


def _save_upload(upload: UploadFile, folder: Path, label: str, context: ServiceContext) -> None:
    settings = context.settings
    target = folder / ("input" + Path(label).suffix.lower()[:10])
    upload.file.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    if target.stat().st_size == 0:
        raise InvalidRequestError("the uploaded file is empty")
    declared = (upload.content_type or "").lower()
    suffix = target.suffix
    if suffix == ".zip" or "zip" in declared:
        if suffix != ".zip":
            target.rename(target.with_suffix(".zip"))
        check_zip(target.with_suffix(".zip"), settings.max_upload_bytes * 4)
    elif declared.startswith("video/") or suffix in (
        ".mp4",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".m4v",
    ):
        check_video(target, settings.max_video_seconds, settings.max_pixels)
    else:
        decode_image(target.read_bytes(), label, settings.max_pixels)


# --- scanning ----------------------------------------------------------------------------


@router.post("/api/library/scan", status_code=202)
def scan_folder(body: ScanRequest, key: EnrollKey, context: Service) -> JobStarted:
    """Scan a server folder (under a --library-root) into the library, in the background.

    The answer (202) names the job; follow it at ``GET /api/jobs/{job}``. Files
    already in the library are skipped; unreadable files are listed in the
    job's result. A folder outside the roots (symlinks resolved) is refused (403).
    """
    check_folder(body.folder, context)
    job_id, folder = context.jobs.new_folder()
    try:
        job = context.jobs.enqueue(
            job_id, LIBRARY_SCAN.name, {"folder": body.folder}, body.folder[-200:], key.id
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    context.audit.record(key, "library_scan", job.id, {"folder": body.folder})
    return JobStarted(job=job.id, state=job.state, status_url=f"/api/jobs/{job.id}")


@router.post(UPLOAD_PATH, status_code=202, dependencies=[Depends(require_multipart)])
async def scan_upload(
    file: Annotated[
        UploadFile, File(description="A photo, a video, or a zip of photos and videos")
    ],
    key: EnrollKey,
    context: Service,
) -> JobStarted:
    """Scan an upload into the library, in the background (as ``POST /api/library/scan``)."""
    declared = (file.content_type or "application/octet-stream").lower()
    if not declared.startswith(
        ("image/", "video/", "application/zip", "application/x-zip", "application/octet-stream")
    ):
        raise UnsupportedMediaTypeError(
            f"{upload_label(file, 'the upload')} is not a photo, a video or a zip "
            f"(it was sent as {declared!r})"
        )
    return await _queue_scan(context, key, {}, upload_label(file, "upload"), file)


@router.get("/api/library")
def library_stats(key: QueryKey, context: Service) -> LibraryStats:
    """How many items the library holds in each state, its faces and groups."""
    library = context.library
    counts = library.store.item_counts()
    stats = library.store.stats()
    return LibraryStats(
        library=library.store.public_name,
        pending=counts.pending,
        done=counts.done,
        failed=counts.failed,
        faces=stats["faces"],
        groups=stats["groups"],
        roots=len(context.settings.library_roots),
        root_folders=list(context.settings.library_roots),
    )


# --- groups -------------------------------------------------------------------------------


@router.get("/api/library/groups")
def list_groups(
    key: QueryKey,
    context: Service,
    response: Response,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    hidden: Annotated[bool, Query(description="List the hidden groups instead")] = False,
) -> list[GroupSummary]:
    """Groups of unknown faces (nobody named them), largest first, a page at a time.

    The total is in the ``X-Total-Count`` header.
    """
    library = context.library
    total, groups = library.groups_page(offset, limit, hidden=hidden)
    response.headers["X-Total-Count"] = str(total)
    lens = context.lens
    resemblances = library.resemblances(
        [g.id for g in groups], lens.operating_point(), lens.calibration
    )
    return [
        GroupSummary(
            id=g.id,
            faces=g.faces,
            hidden=g.hidden,
            samples=[
                FaceSample(face=f, crop_url=_crop_url(f))
                for f in library.store.sample_faces(g.id, SAMPLES)
            ],
            looks_like=LooksLike(**vars(resemblances[g.id])) if g.id in resemblances else None,
        )
        for g in groups
    ]


@router.get("/api/library/groups/{group_id}")
def get_group(group_id: GroupId, key: QueryKey, context: Service) -> GroupDetail:
    """A group and every face in it (best first)."""
    library = context.library
    group = library.store.group(group_id)
    faces = library.store.faces(group_id=group.id)
    return GroupDetail(
        id=group.id,
        name=group.name,
        hidden=group.hidden,
        faces=[
            LibraryFace(
                face=f.id,
                source=shown(f.source, context),
                kind=f.kind,
                box=f.box.as_list(),
                frame_index=f.frame_index,
                time=f.time,
                quality=round(f.quality, 3),
                crop_url=_crop_url(f.id),
            )
            for f in faces
        ],
    )


@router.get(
    "/api/library/faces/{face_id}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The aligned face crop"}},
)
def face_crop(face_id: FaceId, key: QueryKey, context: Service) -> Response:
    """The aligned crop (JPEG) of a face of the library: for thumbnails."""
    crop = context.library.store.crop(face_id)
    if crop is None:
        raise ClusterFaceNotFoundError(f"face {face_id} has no stored crop")
    return Response(crop, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/*": {}, "video/*": {}, "application/octet-stream": {}},
        "description": "The photo or the video, as scanned",
    },
    206: {
        "content": {"image/*": {}, "video/*": {}, "application/octet-stream": {}},
        "description": "The byte range asked for with a Range header (videos seek this way)",
    },
    416: {"content": {"text/plain": {}}, "description": "A Range beyond the file's end"},
}


@router.get(
    "/api/library/items/{item_id}/media", response_class=Response, responses=MEDIA_RESPONSES
)
def item_media(item_id: ItemId, key: QueryKey, context: Service) -> Response:
    """The photo or video of a library item, so a page can show the photo a face was found
    in or play a video from a face's moment. Byte ranges (``Range: bytes=START-END``) are
    answered 206, so a browser's ``<video>`` can seek. Sent only while the file is still
    inside a ``--library-root`` (or the service's uploads): 403 when it no longer is, 404
    when it is gone; errors never show a server path."""
    item = context.library.store.item(item_id)
    path = media_file(item.id, item.source, context)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not media_type.startswith(("image/", "video/")):
        media_type = "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "private, no-store", "Content-Disposition": "inline"},
    )


def _correct(
    context: ServiceContext,
    key: ApiKey,
    action: str,
    target: str | None,
    work: Callable[[Library], dict[str, Any]],
) -> dict[str, Any]:
    result = work(context.library)
    context.audit.record(key, action, target, {"result": str(result)[:500]})
    return result


@router.post("/api/library/groups/{group_id}/name")
def name_group(
    group_id: GroupId, body: GroupNameRequest, key: EnrollKey, context: Service
) -> Correction:
    """The group is this person (new, or already known: it joins them). Its best faces are
    enrolled in the gallery, the rest linked as their appearances. A group someone named
    meanwhile with another name is not renamed (409): of two pages naming one group at
    once, the first name stands (rename a person with ``PATCH /api/people/{name}``). A
    group whose faces look like another enrolled person (its ``looks_like``) is refused
    (409 ``matches_other_person``) unless ``force``."""
    name = clean_name(body.name)
    lens = context.lens
    point, calibration = lens.operating_point(), lens.calibration
    result = _correct(
        context,
        key,
        "library_name",
        str(group_id),
        lambda lib: lib.name(
            group_id,
            name,
            rename=False,
            threshold_for=None
            if body.force
            else (lambda k: person_threshold(point, calibration, k)),
        ),
    )
    context.lens.gallery_search.sync()
    return Correction(**result)


@router.post("/api/library/groups/{group_id}/hide")
def hide_group(
    group_id: GroupId, body: HideRequest, key: EnrollKey, context: Service
) -> Correction:
    """Hide a group of strangers from the groups to name (``hidden: false`` shows it again)."""
    result = _correct(
        context, key, "library_hide", str(group_id), lambda lib: lib.hide(group_id, body.hidden)
    )
    return Correction(**result)


@router.post("/api/library/groups/merge")
def merge_groups(body: MergeRequest, key: EnrollKey, context: Service) -> Correction:
    """These groups are one person: they become one group (the named one, if any)."""
    result = _correct(context, key, "library_merge", None, lambda lib: lib.merge(body.groups))
    context.lens.gallery_search.sync()
    return Correction(**result)


@router.post("/api/library/faces/move")
def move_faces(body: MoveRequest, key: EnrollKey, context: Service) -> Correction:
    """These faces belong to another group (and are not the person they leave)."""
    result = _correct(
        context, key, "library_move", str(body.group), lambda lib: lib.move(body.faces, body.group)
    )
    context.lens.gallery_search.sync()
    return Correction(**result)


@router.post("/api/library/faces/name")
def move_faces_to_person(
    body: FacesToPersonRequest, key: EnrollKey, context: Service
) -> Correction:
    """These faces are this person (known in the gallery or the library, or new): they join
    the group named after them, made for them when the person has none in the library
    (their best faces are then enrolled). The faces are no longer the person they leave,
    and a "not this person" said of them about this name is withdrawn. The answer's
    ``group`` is the person's group."""
    name = clean_name(body.name)
    result = _correct(
        context,
        key,
        "library_move_to_person",
        name,
        lambda lib: lib.move_to_person(body.faces, name),
    )
    context.lens.gallery_search.sync()
    return Correction(**result)


@router.post("/api/library/groups/{group_id}/split")
def split_group(
    group_id: GroupId, body: FacesRequest, key: EnrollKey, context: Service
) -> Correction:
    """These faces of the group are someone else: they become a new group (``new_group``),
    kept apart from the faces left. At least one face must stay (409 otherwise)."""
    result = _correct(
        context,
        key,
        "library_split",
        str(group_id),
        lambda lib: lib.split(group_id, body.faces),
    )
    context.lens.gallery_search.sync()
    return Correction(**result)


@router.post("/api/library/faces/reject")
def reject_faces(body: FacesRequest, key: EnrollKey, context: Service) -> Correction:
    """ "Not this person": the faces leave their groups for good and are grouped again."""
    result = _correct(context, key, "library_reject", None, lambda lib: lib.reject(body.faces))
    context.lens.gallery_search.sync()
    return Correction.model_validate(
        {"group": None, "faces": {str(k): v for k, v in result["faces"].items()}}
    )


@router.post("/api/library/undo")
def undo(key: EnrollKey, context: Service) -> UndoResult:
    """Undo the last correction (name, merge, move, split, reject, hide, not this person)."""
    result = _correct(context, key, "library_undo", None, Library.undo)
    context.lens.gallery_search.sync()
    return UndoResult(**result)


# --- people's appearances -----------------------------------------------------------------


@router.get("/api/people/{name}/appearances")
def appearances(
    name: PersonName, key: QueryKey, context: Service, fmr: Fmr = None, threshold: Threshold = None
) -> list[Appearance]:
    """Every photo and video moment of the library where this person appears: their named
    group's faces (``linked``) and faces the gallery identifies as them at the operating
    point (``identified``), less those marked "not this person"."""
    lens = context.lens
    lens.gallery.get_person(name)  # 404 for someone unknown
    point = lens.operating_point(
        None if threshold is not None else fmr, threshold
    )  # threshold wins
    return [
        _appearance(a, context) for a in context.library.appearances(name, point, lens.calibration)
    ]


@router.post("/api/people/{name}/appearances/{face_id}/reject")
def reject_appearance(
    name: PersonName, face_id: FaceId, key: EnrollKey, context: Service
) -> RejectedAppearance:
    """ "Not this person": this face is never shown as theirs again."""
    context.lens.gallery.get_person(name)
    result = _correct(
        context, key, "library_not_person", name, lambda lib: lib.reject_appearance(name, face_id)
    )
    context.lens.gallery_search.sync()
    return RejectedAppearance.model_validate(result)


# --- search ----------------------------------------------------------------------------------


@router.post("/api/library/search", dependencies=[Depends(require_multipart)])
async def search(
    photo: Annotated[UploadFile, File(description="A photo of the person to look for")],
    key: QueryKey,
    context: Service,
    fmr: Fmr = None,
    threshold: Threshold = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_below: Annotated[
        bool, Query(description="Also list faces below the threshold")
    ] = False,
) -> SearchResult:
    """Every appearance in the library of the person in the photo (its largest face),
    ranked, with the calibrated evidence of each."""
    image = await read_image(photo, context.settings.max_pixels)
    lens = context.lens
    point = lens.operating_point(
        None if threshold is not None else fmr, threshold
    )  # threshold wins

    def work() -> SearchResult:
        face = main_face(lens.pipeline.detect(image), upload_label(photo))
        assert face.template is not None
        library = context.library
        found = library.search(
            face.template.vector, point, lens.calibration, limit=limit, include_below=include_below
        )
        ids = [a.face for a in found if a.face is not None]
        records = {f.id: f for f in library.store.faces(ids)} if ids else {}
        hits = []
        for a in found:
            record = records.get(a.face) if a.face is not None else None
            hits.append(
                SearchHit(
                    **{
                        **a.to_dict(),
                        "source": shown(a.source, context),
                        "item": None if record is None else record.photo_id,
                        "kind": None if record is None else record.kind,
                        "crop_url": None if a.face is None else _crop_url(a.face),
                    }
                )
            )
        return SearchResult(
            threshold=point.threshold,
            fmr=point.fmr,
            faces_searched=library.store.stats()["faces"],
            appearances=hits,
        )

    result = await run_in_threadpool(context.analysing, work)
    await context.audit.record_in_thread(
        key, "library_search", None, {"found": len(result.appearances)}
    )
    return result
