"""Who is calling: the API key of a request, and the role each route needs.

A key is accepted from ``Authorization: Bearer <key>``, ``X-API-Key:
<key>``, or the ``facelens_key`` cookie that ``POST /api/session`` sets
(HttpOnly, SameSite=Strict) so the web page's ``<img>`` tags and downloads
are authenticated too. Every key a request presents must be valid: one bad
credential is never ignored because another is good (an ``Authorization``
header that is not ``Bearer <key>`` is refused too). A request without a
valid key gets 401, a valid key whose role is too low 403; both are written
to the audit log (action ``refused``) with the key id when one can be read
from the presented key, the client address and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facelens.service.context import ServiceContext
from facelens.service.errors import NotAuthenticatedError, PermissionDeniedError
from facelens.service.keys import ApiKey, Role, key_id_of

__all__ = ["COOKIE_NAME", "AdminKey", "EnrollKey", "QueryKey", "Service", "authenticate"]

COOKIE_NAME = "facelens_key"

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer fl_<id>_<secret>`")
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: fl_<id>_<secret>`"
)
_cookie = APIKeyCookie(name=COOKIE_NAME, auto_error=False, description="set by POST /api/session")


def service(request: Request) -> ServiceContext:
    """The process's :class:`ServiceContext`."""
    context: ServiceContext = request.app.state.service
    return context


def presented_keys(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> list[tuple[str, str]]:
    """Every key the request carries, as ``(where, key)``: Authorization, X-API-Key, cookie.

    (The three security dependencies declare the schemes in the OpenAPI schema; the
    ``Authorization`` header is read here so that one that is not ``Bearer`` is not ignored.)
    """
    found: list[tuple[str, str]] = []
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            found.append(("the Authorization header", ""))
        else:
            found.append(("the Authorization header", credentials.strip()))
    if header is not None:
        found.append(("the X-API-Key header", header))
    if cookie is not None:
        found.append((f"the {COOKIE_NAME} cookie", cookie))
    return found


def authenticate(context: ServiceContext, request: Request, key_text: str, where: str) -> ApiKey:
    """The active key ``key_text`` is; a refusal (401) is written to the audit log first."""
    try:
        if not key_text.strip():
            raise NotAuthenticatedError(
                f"{where} holds no API key; send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            )
        return context.keys.authenticate(key_text)
    except NotAuthenticatedError as error:
        record_refusal(context, request, str(error), NotAuthenticatedError.code, key_text)
        raise


def record_refusal(
    context: ServiceContext,
    request: Request,
    reason: str,
    outcome: str,
    key_text: str | None = None,
    key: ApiKey | None = None,
) -> None:
    """An audit entry ``refused``: the request line, the client address, the reason, and the
    key id when one can be read from the presented key (never the key itself)."""
    detail: dict[str, Any] = {
        "address": request.client.host if request.client else None,
        "reason": reason,
    }
    if key is None and key_text:
        detail["key_id"] = key_id_of(key_text)
    context.audit.record(key, "refused", f"{request.method} {request.url.path}", detail, outcome)


def require(role: Role) -> Callable[..., ApiKey]:
    """A dependency that returns the caller's key when its role is ``role`` or higher."""

    def dependency(
        request: Request,
        presented: Annotated[list[tuple[str, str]], Depends(presented_keys)],
        context: Annotated[ServiceContext, Depends(service)],
    ) -> ApiKey:
        if not presented:
            message = (
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
                "(an admin creates keys with `facelens keys create`)"
            )
            record_refusal(context, request, message, NotAuthenticatedError.code)
            raise NotAuthenticatedError(message)
        keys = [authenticate(context, request, text, where) for where, text in presented]
        key = keys[0]
        if not key.allows(role):
            record_refusal(
                context,
                request,
                f"needs the role {role!r}",
                PermissionDeniedError.code,
                key=key,
            )
            raise PermissionDeniedError(
                f"key {key.id} ({key.name}) has the role {key.role!r}; this needs {role!r} or above"
            )
        return key

    return dependency


query_key = require("query")
enroll_key = require("enroll")
admin_key = require("admin")

QueryKey = Annotated[ApiKey, Depends(query_key)]
"""A route parameter: the caller's key, role query or above."""
EnrollKey = Annotated[ApiKey, Depends(enroll_key)]
AdminKey = Annotated[ApiKey, Depends(admin_key)]
Service = Annotated[ServiceContext, Depends(service)]
