"""``/api/analyze``: apparent expression, age and gender of every face of an uploaded photo.

Boxes are ``[x, y, width, height]`` and landmarks ``(x, y)`` in pixels of the
uploaded (EXIF-rotated) image. Apparent attributes only: see docs/models.md for
what the models are not good for.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from facelens.analysis.attributes import AnalyzedFace
from facelens.service.auth import QueryKey, Service
from facelens.service.limits import read_image, require_multipart
from facelens.service.multipart import UploadRoute
from facelens.service.schemas import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(
    prefix="/api", tags=["analysis"], responses=ERROR_RESPONSES, route_class=UploadRoute
)


@router.post("/analyze", dependencies=[Depends(require_multipart)])
async def analyze(
    key: QueryKey,
    context: Service,
    image: Annotated[UploadFile, File(description="A photo (JPEG, PNG, WEBP, ...)")],
    age_gender: Annotated[
        bool, Query(description="Also estimate apparent age and gender (a larger model).")
    ] = True,
    cropped: Annotated[
        bool,
        Query(
            description="The photo is one face crop: analyse the whole photo as the face. "
            "A small photo where no face is found is taken as a crop anyway."
        ),
    ] = False,
) -> dict[str, Any]:
    """Every face of a photo with its expression (7 classes with probabilities) and, unless
    ``age_gender=false``, apparent age and gender. A face with ``"cropped": true`` is the
    whole photo, taken as a tight face crop."""
    decoded = await read_image(image, context.settings.max_pixels)

    def work() -> list[AnalyzedFace]:
        return context.lens.analyze(decoded, age_gender=age_gender, cropped=cropped)

    analyzed = await run_in_threadpool(context.analysing, work)
    await context.audit.record_in_thread(
        key, "analyze", None, {"photo": decoded.source, "faces": len(analyzed)}
    )
    return {
        "photo": decoded.source,
        "width": decoded.width,
        "height": decoded.height,
        "faces": [face.to_dict() for face in analyzed],
    }
