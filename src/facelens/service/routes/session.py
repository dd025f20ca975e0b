"""``/api/session`` (log in and out with a key, for the web page), ``/api/health``, ``/api/audit``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from facelens.service.auth import COOKIE_NAME, AdminKey, QueryKey, Service, authenticate
from facelens.service.schemas import ERROR_RESPONSES, SessionRequest

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["session"], responses=ERROR_RESPONSES)


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness (no key needed; reveals nothing)."""
    return {"status": "ok"}


@router.post("/session")
def log_in(
    body: SessionRequest,
    request: Request,
    response: Response,
    context: Service,
) -> dict[str, Any]:
    """Check a key and keep it in an HttpOnly, SameSite=Strict cookie for the web page."""
    key = authenticate(context, request, body.key, "the key")
    response.set_cookie(
        COOKIE_NAME,
        body.key.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    context.audit.record(key, "log_in")
    return key.to_dict()


@router.delete("/session")
def log_out(response: Response) -> dict[str, bool]:
    """Forget the cookie."""
    response.delete_cookie(COOKIE_NAME, path="/")
    return {"logged_out": True}


@router.get("/session")
def who_am_i(key: QueryKey) -> dict[str, Any]:
    """The key this request is made with: id, name, role."""
    return key.to_dict()


@router.get("/audit")
def audit_log(
    key: AdminKey,
    context: Service,
    limit: Annotated[int, Query(ge=1, le=10000, description="Newest entries to return")] = 100,
    action: Annotated[str | None, Query(max_length=50, description="Only this action")] = None,
) -> list[dict[str, Any]]:
    """The audit log, oldest first (admin only)."""
    return [e.to_dict() for e in context.audit.entries(limit=limit, action=action)]
