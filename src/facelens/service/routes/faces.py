"""``/api/detect``, ``/api/identify``, ``/api/verify``: one or two uploaded photos in, JSON out.

Boxes are ``[x, y, width, height]`` and landmarks ``(x, y)`` in pixels of the
uploaded (EXIF-rotated) image, whose ``width`` and ``height`` are returned too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile
from starlette.concurrency import run_in_threadpool

from facelens.match.decide import main_face, verify_faces
from facelens.service.auth import QueryKey, Service
from facelens.service.limits import read_image, require_multipart
from facelens.service.multipart import UploadRoute
from facelens.service.routes.common import Fmr, Threshold, TopK
from facelens.service.schemas import ERROR_RESPONSES
from facelens.types import Match, Verification

__all__ = ["router"]

router = APIRouter(
    prefix="/api", tags=["faces"], responses=ERROR_RESPONSES, route_class=UploadRoute
)


@router.post("/detect", dependencies=[Depends(require_multipart)])
async def detect(
    key: QueryKey,
    context: Service,
    image: Annotated[UploadFile, File(description="A photo (JPEG, PNG, WEBP, ...)")],
) -> dict[str, Any]:
    """Every face of a photo: box, 5 landmarks, detector score and quality (no templates)."""
    decoded = await read_image(image, context.settings.max_pixels)
    faces = await run_in_threadpool(
        context.analysing, lambda: context.lens.pipeline.detect(decoded, embed=False)
    )
    await context.audit.record_in_thread(
        key, "detect", None, {"photo": decoded.source, "faces": len(faces)}
    )
    return {
        "photo": decoded.source,
        "width": decoded.width,
        "height": decoded.height,
        "faces": [face.to_dict() for face in faces],
    }


@router.post("/identify", dependencies=[Depends(require_multipart)])
async def identify(
    key: QueryKey,
    context: Service,
    image: Annotated[UploadFile, File(description="A photo (JPEG, PNG, WEBP, ...)")],
    fmr: Fmr = None,
    threshold: Threshold = None,
    top_k: TopK = 5,
) -> dict[str, Any]:
    """Who is each face of a photo? ``identity`` is null for a face nobody in the gallery matches."""
    decoded = await read_image(image, context.settings.max_pixels)
    lens = context.lens
    point = lens.operating_point(
        None if threshold is not None else fmr, threshold
    )  # a bad operating point fails before the work

    def work() -> list[Match]:
        return lens.gallery_search.match(lens.pipeline.detect(decoded), point, top_k)

    matches = await run_in_threadpool(context.analysing, work)
    await context.audit.record_in_thread(
        key,
        "identify",
        None,
        {
            "photo": decoded.source,
            "faces": len(matches),
            "identified": sorted({m.identity for m in matches if m.identity}),
        },
    )
    return {
        "photo": decoded.source,
        "width": decoded.width,
        "height": decoded.height,
        "threshold": round(point.threshold, 4),
        "fmr": point.fmr,
        "calibration": point.calibration,
        "faces": [match.to_dict() for match in matches],
    }


@router.post("/verify", dependencies=[Depends(require_multipart)])
async def verify(
    key: QueryKey,
    context: Service,
    image_a: Annotated[UploadFile, File(description="The first photo")],
    image_b: Annotated[UploadFile, File(description="The second photo")],
    fmr: Fmr = None,
    threshold: Threshold = None,
) -> dict[str, Any]:
    """Are the main (largest) faces of two photos the same person?"""
    decoded_a = await read_image(image_a, context.settings.max_pixels)
    decoded_b = await read_image(image_b, context.settings.max_pixels)
    lens = context.lens
    point = lens.operating_point(None if threshold is not None else fmr, threshold)

    def work() -> Verification:
        face_a = main_face(lens.pipeline.detect(decoded_a), decoded_a.source)
        face_b = main_face(lens.pipeline.detect(decoded_b), decoded_b.source)
        return verify_faces(face_a, face_b, point, lens.calibration)

    result = await run_in_threadpool(context.analysing, work)
    await context.audit.record_in_thread(
        key,
        "verify",
        None,
        {"photos": [decoded_a.source, decoded_b.source], "same": result.same},
    )
    return result.to_dict()
