"""The OpenAPI schema as the contract: it describes what the service refuses.

FastAPI derives most of the schema from the routes; :func:`contract_schema`
adds what the routes cannot say by themselves, so that every request the
schema allows is served and every request it forbids is refused:

* uploads are non-empty (``minLength: 1``), photo lists hold 1 to
  ``max_images_per_request`` files, and image parts are declared as images
  (``encoding.contentType``);
* a person's name follows :func:`~facelens.service.schemas.name_pattern`;
* ``fmr`` is at least the smallest rate the embedder's calibration supports;
* each job kind is its own operation, ``POST /api/jobs/<kind>``, with its
  upload's media types and its ``params`` as a JSON object with typed,
  bounded properties (the route itself stays ``/api/jobs/{kind}``).

:func:`allowed_methods` answers the ``Allow`` header of a 405 from the schema
(a concrete path before a templated one, as OpenAPI matches them).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route

from facelens.service.context import ServiceContext
from facelens.service.job_kinds import available_kinds
from facelens.service.schemas import name_pattern

__all__ = ["allowed_methods", "contract_schema"]

IMAGE_MEDIA_TYPES = "image/jpeg, image/png, image/webp, image/gif, image/bmp, image/tiff"
"""The media types an image part is declared with (the bytes decide in the end)."""
UPLOAD_MEDIA_TYPES = {
    "video": "video/mp4, video/quicktime, video/webm, video/x-matroska, video/x-msvideo",
    "zip": "application/zip",
    "media": f"{IMAGE_MEDIA_TYPES}, video/mp4, video/quicktime, video/webm",
}
JOB_RESULT_MEDIA_TYPES = (
    "application/json",
    "text/csv",
    "text/html",
    "video/mp4",
    "video/webm",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "application/octet-stream",
)
"""Every media type ``GET /api/jobs/{job_id}/result`` can answer with (results and reports)."""

_NAMED_BODIES = (
    "Body_enroll_api_people_post",
    "RenameRequest",
    "NameRequest",
    "FacesToPersonRequest",
)


def contract_schema(app: FastAPI, context: ServiceContext) -> dict[str, Any]:
    """The app's OpenAPI schema with the contract's refinements (built once, then cached)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    limit = context.settings.max_images_per_request
    for name, body in components.items():
        if name.startswith("Body_"):
            _refine_uploads(body, limit)
    for name in _NAMED_BODIES:
        if name in components:
            components[name]["properties"]["name"]["pattern"] = name_pattern()
    calibration = context.lens.calibration
    min_fmr = max(calibration.min_fmr, calibration.fmr[-1])
    for item in schema["paths"].values():
        for operation in item.values():
            _declare_images(operation, components)
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "fmr":
                    _set_min_fmr(parameter["schema"], min_fmr)
    _split_job_kinds(schema, min_fmr)
    _declare_library_upload(schema)
    result = schema["paths"].get("/api/jobs/{job_id}/result", {}).get("get")
    if result is not None:
        result["responses"]["200"]["content"] = {t: {} for t in JOB_RESULT_MEDIA_TYPES}
    app.openapi_schema = schema
    return schema


def _refine_uploads(body: dict[str, Any], max_files: int) -> None:
    for prop in body.get("properties", {}).values():
        if prop.get("contentMediaType") == "application/octet-stream":
            prop["minLength"] = 1
        items = prop.get("items", {})
        if items.get("contentMediaType") == "application/octet-stream":
            items["minLength"] = 1
            prop["minItems"], prop["maxItems"] = 1, max_files


def _declare_images(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """Image parts (the photo routes' file fields) carry ``encoding.contentType``."""
    content = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    if content is None or "$ref" not in content.get("schema", {}):
        return
    body = components[content["schema"]["$ref"].rsplit("/", 1)[-1]]
    images = [
        name
        for name, prop in body.get("properties", {}).items()
        if name in ("image", "image_a", "image_b", "photos", "photo")
        and "application/octet-stream"
        in (prop.get("contentMediaType"), prop.get("items", {}).get("contentMediaType"))
    ]
    if images:
        content["encoding"] = {name: {"contentType": IMAGE_MEDIA_TYPES} for name in images}


def _declare_library_upload(schema: dict[str, Any]) -> None:
    """``POST /api/library/scan/upload`` takes a photo, a video or a zip of photos."""
    operation = schema["paths"].get("/api/library/scan/upload", {}).get("post")
    if operation is None:
        return
    content = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    if content is not None:
        media = f"{UPLOAD_MEDIA_TYPES['media']}, {UPLOAD_MEDIA_TYPES['zip']}"
        content["encoding"] = {"file": {"contentType": media}}


def _set_min_fmr(schema: dict[str, Any], min_fmr: float) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "number":
            option.pop("exclusiveMinimum", None)
            option["minimum"] = min_fmr


def _split_job_kinds(schema: dict[str, Any], min_fmr: float) -> None:
    """``POST /api/jobs/{kind}`` becomes one operation per kind this server runs."""
    listing = schema["paths"].get("/api/jobs", {}).get("get")
    if listing is None:
        return
    generic = copy.deepcopy(listing)  # its security and error answers; 202 instead of 200
    generic["responses"].pop("200")
    generic["responses"]["202"] = {
        "description": "The queued job (as GET /api/jobs/{job_id} shows it)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    for kind in available_kinds().values():
        operation = copy.deepcopy(generic)
        operation["operationId"] = f"start_{kind.name}_job"
        operation["summary"] = f"Start a {kind.name} job"
        operation["description"] = (
            f"{kind.description}. Needs a key of role {kind.role!r} or above. Answers 202 once "
            "the upload and the queued job are on disk; poll `GET /api/jobs/{id}`."
        )
        operation["parameters"] = [
            p for p in operation.get("parameters", []) if p["name"] != "kind"
        ]
        params = kind.params_schema()
        for name, prop in params["properties"].items():
            if name == "fmr":
                _set_min_fmr(prop, min_fmr)
        params["description"] = "The kind's parameters, a JSON object (see GET /api/jobs/kinds)"
        operation["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                                "minLength": 1,
                                "description": f"The input: {kind.upload}",
                            },
                            "params": params,
                        },
                    },
                    "encoding": {
                        "file": {"contentType": UPLOAD_MEDIA_TYPES[kind.upload]},
                        "params": {"contentType": "application/json"},
                    },
                }
            },
        }
        schema["paths"][f"/api/jobs/{kind.name}"] = {"post": operation}


def _template_regex(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^{}]+\})", path)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods ``path`` answers, for the ``Allow`` header of a 405.

    From the schema's paths, a concrete one before templated ones (the fewest
    parameters win); for a path outside the schema, from the app's routes.
    """
    best: list[tuple[int, list[str]]] = []
    for template, item in app.openapi()["paths"].items():
        if _template_regex(template).match(path):
            best.append((template.count("{"), [m.upper() for m in item]))
    if best:
        fewest = min(count for count, _ in best)
        methods = {m for count, ms in best if count == fewest for m in ms}
    else:
        methods = set()
        for route in app.routes:
            if isinstance(route, Route) and route.methods and route.path_regex.match(path):
                methods |= route.methods  # (HEAD only where the route really answers it)
    return sorted(methods)
