"""``/api/people``: enroll, list, look at, rename and erase the people of the gallery.

Photos of one enrollment are stored in one transaction, acknowledged only
after it is committed. A photo that does not hold exactly one usable face is
rejected with the reason while the others are enrolled; when none is
accepted the answer is 422 ``no_usable_photo`` with every photo's reason.
A photo already in the gallery is rejected (``duplicate``); when every photo
of a request is one already there, the answer is 409 ``duplicate_photo`` (the
request was well formed: it conflicts with what the gallery holds). When another
enrolled person matches a photo better than the person named, nothing is
stored and the answer is 409 ``matches_other_person`` with every photo's
outcome, unless the form field ``force`` is true (see
:mod:`facelens.apps.enroll`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from facelens.apps.enroll import (
    DUPLICATE,
    MATCHES_OTHER_PERSON,
    EnrollOutcome,
    EnrollPlan,
    prepare_enrollment,
    save_enrollment,
)
from facelens.errors import FaceLensError, TemplateNotFoundError
from facelens.io.image import DecodedImage
from facelens.pipeline.face_choice import FACE_CHOICE_PATTERN, FaceChoice
from facelens.service.auth import AdminKey, EnrollKey, QueryKey, Service
from facelens.service.context import ServiceContext
from facelens.service.errors import InvalidRequestError, ServiceError
from facelens.service.keys import ApiKey
from facelens.service.limits import check_count, read_image, require_multipart, upload_label
from facelens.service.multipart import UploadRoute
from facelens.service.routes.common import PersonName, clean_name
from facelens.service.schemas import ERROR_RESPONSES, RenameRequest
from facelens.types import Person

__all__ = ["router"]

router = APIRouter(
    prefix="/api/people", tags=["people"], responses=ERROR_RESPONSES, route_class=UploadRoute
)

Photos = list[UploadFile]
FACE_HELP = (
    "Which face of each photo: 'only' (the photo's one usable face; several are refused), "
    "'largest' (its largest usable face), or 'X,Y': the face whose box holds that point, "
    "in the photo's pixels from its top-left corner (one photo per request)"
)
FORCE_HELP = (
    "Save photos that another enrolled person matches better than this one "
    "(otherwise 409 matches_other_person, nothing saved)"
)


class NoUsablePhotoError(InvalidRequestError):
    """Not one photo of an enrollment held exactly one usable face."""

    code = "no_usable_photo"

    def __init__(self, message: str, outcomes: list[EnrollOutcome]) -> None:
        super().__init__(message)
        self.details = {"photos": [o.to_dict() for o in outcomes]}


class DuplicatePhotoError(ServiceError):
    """Every photo of an enrollment is already in the gallery: nothing new to store."""

    code = "duplicate_photo"
    status = 409

    def __init__(self, message: str, outcomes: list[EnrollOutcome]) -> None:
        super().__init__(message)
        self.details = {"photos": [o.to_dict() for o in outcomes]}


class MatchesOtherPersonError(ServiceError):
    """A photo to enroll is matched better by another enrolled person: nothing was stored."""

    code = MATCHES_OTHER_PERSON
    status = 409

    def __init__(self, message: str, outcomes: list[EnrollOutcome]) -> None:
        super().__init__(message)
        self.details = {"photos": [o.to_dict() for o in outcomes]}


def _person_dict(person: Person) -> dict[str, Any]:
    return {
        "id": person.id,
        "name": person.name,
        "templates": person.templates,
        "created_at": person.created_at,
    }


async def _enroll(
    context: ServiceContext,
    key: ApiKey,
    name: str,
    photos: Photos,
    action: str,
    force: bool,
    face: str,
) -> dict[str, Any]:
    check_count(photos, context.settings.max_images_per_request, "photos")
    choice = FaceChoice.parse(face)
    if choice.point is not None and len(photos) > 1:
        raise InvalidRequestError(
            f"face={face} picks a face at a point of one photo, and this request has "
            f"{len(photos)}: send each photo with its own point"
        )
    decoded: list[tuple[int, DecodedImage]] = []
    outcomes: list[EnrollOutcome | None] = []
    for index, upload in enumerate(photos):
        try:
            decoded.append((index, await read_image(upload, context.settings.max_pixels)))
            outcomes.append(None)
        except FaceLensError as error:
            outcomes.append(
                EnrollOutcome(upload_label(upload), False, reason=str(error), code=error.code)
            )
    lens = context.lens

    def prepare() -> EnrollPlan:
        images = [image for _, image in decoded]
        return prepare_enrollment(
            lens.pipeline,
            lens.gallery,
            name,
            images,
            screen=lens.gallery_search.screen,
            force=force,
            choice=choice,
        )

    plan = await run_in_threadpool(context.analysing, prepare)
    for (index, _), outcome in zip(decoded, plan.outcomes, strict=True):
        outcomes[index] = outcome
    if plan.conflicts:
        held = [o for o in outcomes if o is not None]
        await context.audit.record_in_thread(
            key,
            action,
            name,
            {"held": [o.source for o in plan.conflicts]},
            outcome=MATCHES_OTHER_PERSON,
        )
        others = ", ".join(sorted({repr(o.match.name) for o in plan.conflicts if o.match}))
        raise MatchesOtherPersonError(
            f"nothing was saved: {len(plan.conflicts)} photo(s) match {others} better than "
            f"{plan.name!r}; send force=true to save them anyway",
            held,
        )
    report = await run_in_threadpool(save_enrollment, lens.gallery, plan)
    for (index, _), outcome in zip(decoded, report.outcomes, strict=True):
        outcomes[index] = outcome
    final = [o for o in outcomes if o is not None]
    accepted = [o.source for o in final if o.accepted]
    all_duplicates = bool(final) and all(o.code == DUPLICATE for o in final)
    refusal = DuplicatePhotoError.code if all_duplicates else NoUsablePhotoError.code
    await context.audit.record_in_thread(
        key,
        action,
        name,
        {"accepted": accepted, "rejected": [o.source for o in final if not o.accepted]},
        outcome="ok" if accepted else refusal,
    )
    if all_duplicates:
        owners = sorted({o.match.name for o in final if o.match is not None})
        whose = f" (enrolled for {', '.join(repr(n) for n in owners)})" if owners else ""
        raise DuplicatePhotoError(
            f"nothing was saved: every photo sent for {name!r} is already in the gallery{whose}",
            final,
        )
    if not accepted:
        raise NoUsablePhotoError(
            f"no photo of {name!r} was enrolled: each needs one usable face (or a face picked), "
            "not already in the gallery (see each photo's reason)",
            final,
        )
    person = report.person
    return {
        "person": _person_dict(person) if person else None,
        "accepted": len(accepted),
        "rejected": len(final) - len(accepted),
        "photos": [o.to_dict() for o in final],
    }


@router.get("")
def list_people(key: QueryKey, context: Service) -> list[dict[str, Any]]:
    """Everyone in the gallery, by name, with their number of templates."""
    return [_person_dict(p) for p in context.lens.people()]


@router.post("", status_code=201, dependencies=[Depends(require_multipart)])
async def enroll(
    name: Annotated[str, Form(min_length=1, max_length=200, description="The person's name")],
    photos: Annotated[Photos, File(description="Photos of this person alone (one face each)")],
    key: EnrollKey,
    context: Service,
    force: Annotated[bool, Form(description=FORCE_HELP)] = False,
    face: Annotated[str, Form(pattern=FACE_CHOICE_PATTERN, description=FACE_HELP)] = "only",
) -> dict[str, Any]:
    """Enroll a person from photos (created if new, else the photos are added)."""
    return await _enroll(context, key, clean_name(name), photos, "enroll", force, face)


@router.get("/{name}")
def get_person(name: PersonName, key: QueryKey, context: Service) -> dict[str, Any]:
    """A person and the photos their templates came from (ids, labels, quality)."""
    gallery = context.lens.gallery
    person = gallery.get_person(name)
    return {
        **_person_dict(person),
        "photos": [
            {
                "id": t.id,
                "source": t.source,
                "quality": round(t.quality, 3),
                "created_at": t.created_at,
            }
            for t in gallery.list_templates(name)
        ],
    }


@router.patch("/{name}")
def rename_person(
    name: PersonName,
    body: RenameRequest,
    key: EnrollKey,
    context: Service,
) -> dict[str, Any]:
    """Rename a person, keeping their templates."""
    new = clean_name(body.name)
    person = context.lens.rename(name, new)
    context.audit.record(key, "rename", name, {"new_name": person.name})
    return _person_dict(person)


@router.delete("/{name}")
def erase_person(name: PersonName, key: AdminKey, context: Service) -> dict[str, Any]:
    """Erase a person: every template and face crop of theirs leaves the gallery file."""
    removed = context.lens.erase(name)
    context.audit.record(key, "erase", name, {"templates": removed})
    context.audit.forget(name)  # the name leaves the audit log too (a keyed pseudonym stays)
    return {"erased": name, "templates": removed}


@router.post("/{name}/photos", status_code=201, dependencies=[Depends(require_multipart)])
async def add_photos(
    name: PersonName,
    photos: Annotated[Photos, File(description="More photos of this person")],
    key: EnrollKey,
    context: Service,
    force: Annotated[bool, Form(description=FORCE_HELP)] = False,
    face: Annotated[str, Form(pattern=FACE_CHOICE_PATTERN, description=FACE_HELP)] = "only",
) -> dict[str, Any]:
    """Add photos to a person already in the gallery (404 if they are not)."""
    person = context.lens.gallery.get_person(name)
    return await _enroll(context, key, person.name, photos, "add_photos", force, face)


@router.get(
    "/{name}/photos/{template_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The aligned face crop"}},
)
def photo_crop(
    name: PersonName,
    template_id: int,
    key: EnrollKey,
    context: Service,
) -> Response:
    """The aligned face crop (JPEG) a template was made from."""
    gallery = context.lens.gallery
    _owned_template(context, name, template_id)
    crop = gallery.get_crop(template_id)
    if crop is None:
        raise TemplateNotFoundError(f"template {template_id} has no stored face crop")
    context.audit.record(key, "export_crop", name, {"template": template_id})
    return Response(crop, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.delete("/{name}/photos/{template_id}")
def remove_photo(
    name: PersonName,
    template_id: int,
    key: AdminKey,
    context: Service,
) -> dict[str, Any]:
    """Erase one template (and its crop) of a person."""
    _owned_template(context, name, template_id)
    context.lens.gallery.remove_template(template_id)
    context.audit.record(key, "erase_photo", name, {"template": template_id})
    return {"erased_template": template_id, "person": name}


def _owned_template(context: ServiceContext, name: str, template_id: int) -> None:
    owned = {t.id for t in context.lens.gallery.list_templates(name)}
    if template_id not in owned:
        raise TemplateNotFoundError(f"{name!r} has no template {template_id}")
