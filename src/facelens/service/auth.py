"""Who is calling: the API key of a request, and the role each route needs.

A key is accepted from, in this order: ``Authorization: Bearer <key>``,
``X-API-Key: <key>``, or the ``facelens_key`` cookie that ``POST
/api/session`` sets (HttpOnly, SameSite=Strict) so the web page's ``<img>``
tags and downloads are authenticated too. A request without a valid key gets
401; a valid key whose role is too low gets 403 (and an audit entry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facelens.service.context import ServiceContext
from facelens.service.errors import NotAuthenticatedError, PermissionDeniedError
from facelens.service.keys import ApiKey, Role

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


def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> str | None:
    """The key string the request carries, if any."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header or cookie or None


def require(role: Role) -> Callable[..., ApiKey]:
    """A dependency that returns the caller's key when its role is ``role`` or higher."""

    def dependency(
        request: Request,
        key_text: Annotated[str | None, Depends(presented_key)],
        context: Annotated[ServiceContext, Depends(service)],
    ) -> ApiKey:
        if not key_text:
            raise NotAuthenticatedError(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
                "(an admin creates keys with `facelens keys create`)"
            )
        key = context.keys.authenticate(key_text)
        if not key.allows(role):
            context.audit.record(
                key,
                "refused",
                f"{request.method} {request.url.path}",
                {"needs": role},
                outcome=PermissionDeniedError.code,
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
