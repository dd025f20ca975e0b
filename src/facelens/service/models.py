"""Pydantic shapes of the JSON the service answers with (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="A FaceLensError code, e.g. no_face, unauthenticated")
    message: str = Field(description="What went wrong and what to do about it")
    details: Any | None = Field(default=None, description="Extra data, e.g. per-photo outcomes")


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "No valid API key",
        403: "The key's role is too low",
        404: "Not found",
        408: "The request body was sent too slowly",
        409: "Conflict with the gallery's state",
        413: "Request or image too large",
        415: "Wrong content type",
        422: "The input was unusable (no face, not an image, bad parameter)",
        503: "Busy: retry later",
    }.items()
}


class RenameRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The new name")


class SessionRequest(BaseModel):
    key: str = Field(min_length=1, max_length=200, description="An API key fl_<id>_<secret>")
