"""The FastAPI application: routes, limits, error handling, docs and the web page.

``create_app(settings)`` builds one app; ``app_from_env()`` is the factory
uvicorn's worker processes call (settings come in ``$FACELENS_SERVICE_SETTINGS``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facelens.errors import FaceLensError
from facelens.pipeline.face_choice import FACE_CHOICE_PATTERN
from facelens.service.context import ServiceContext
from facelens.service.docs import mount_docs
from facelens.service.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    RouteNotFoundError,
    ServiceError,
    http_status,
)
from facelens.service.limits import BodyLimitMiddleware, BodyRejectedError
from facelens.service.openapi import allowed_methods, contract_schema
from facelens.service.paths import hide_server_paths
from facelens.service.routes import analysis, faces, jobs, library, people, session
from facelens.service.settings import ServiceSettings
from facelens.version import __version__

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("facelens.service")

WEB_MOUNT = "/web"


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error shape: ``{"error": {"code", "message"[, "details"]}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _facelens_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceLensError)
    status = http_status(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": "5"} if status == 503 else None
    if status == 405:
        headers = {"Allow": ", ".join(allowed_methods(request.app, request.url.path))}
    settings: ServiceSettings = request.app.state.service.settings
    message = _server_advice(hide_server_paths(str(exc), roots=settings.server_paths()))
    details = _server_advice(getattr(exc, "details", None))  # each photo's reason too
    return error_response(status, exc.code, message, details, headers)


def _server_advice(found: Any) -> Any:
    """The library's advice is about the caller's own environment; in the service the limit
    is the server's: in a message, or in every text of its details."""
    if isinstance(found, str):
        return found.replace(
            "raise FACELENS_MAX_PIXELS", "ask for a larger limit (facelens serve --max-pixels)"
        )
    if isinstance(found, dict):
        return {key: _server_advice(value) for key, value in found.items()}
    if isinstance(found, list):
        return [_server_advice(value) for value in found]
    return found


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(item) for item in exc.errors()]
    message = "; ".join(problems[:5]) or "invalid request"
    return error_response(422, InvalidRequestError.code, message)


def _problem(item: dict[str, Any]) -> str:
    """One validation problem in words: where (``body.name``), then what is wrong."""
    location = [str(part) for part in item.get("loc", ())]
    kind = item.get("type", "")
    if kind == "json_invalid":  # the location is the body and a character offset
        reason = (item.get("ctx") or {}).get("error", "invalid")
        offset = f" at character {location[1]}" if len(location) > 1 else ""
        return f"the body is not valid JSON ({reason}{offset})"
    where = ".".join(location)
    if kind == "missing" and location[:1] == ["body"]:
        return f"{where}: required (a form field sent empty counts as missing)"
    words = _PROBLEM_WORDS.get(kind)
    if words is not None:
        return f"{where}: {words(item.get('ctx') or {})}"
    if "Expected UploadFile" in str(item.get("msg", "")):
        return f"{where}: send a file here (a part with a file name or a binary type), not text"
    return f"{where}: {item.get('msg', 'invalid')}"


_PROBLEM_WORDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "string_too_short": lambda ctx: (
        "cannot be empty"
        if ctx.get("min_length", 1) <= 1
        else f"needs at least {ctx['min_length']} characters"
    ),
    "string_too_long": lambda ctx: f"can hold at most {ctx.get('max_length')} characters",
    "string_pattern_mismatch": lambda ctx: (
        "give 'only', 'largest' or a point 'X,Y' in the photo's pixels (e.g. 240,130)"
        if ctx.get("pattern") == FACE_CHOICE_PATTERN
        else f"does not have the form {ctx.get('pattern')}"
    ),
    "finite_number": lambda ctx: "must be a finite number (not NaN or infinity)",
}
"""Pydantic's validation problems that read as framework terms, in the caller's words."""


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyRejectedError):
        return error_response(exc.error.status, exc.error.code, str(exc.error))
    error: ServiceError
    if exc.status_code == 404:
        error = RouteNotFoundError(f"no route {request.method} {request.url.path}")
    elif exc.status_code == 405:
        allowed = allowed_methods(request.app, request.url.path)
        error = MethodNotAllowedError(
            f"{request.method} is not allowed on {request.url.path}; it allows {', '.join(allowed)}"
        )
        return error_response(
            error.status, error.code, str(error), headers={"Allow": ", ".join(allowed)}
        )
    else:
        code = "bad_request" if exc.status_code == 400 else f"http_{exc.status_code}"
        return error_response(exc.status_code, code, str(exc.detail))
    return error_response(error.status, error.code, str(error))


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "an internal error occurred; it has been logged")


class WorkerHeaderMiddleware:
    """Adds ``X-FaceLens-Worker: <pid>`` to every response: which worker process answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-facelens-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


def create_app(settings: ServiceSettings | None = None, *, start_jobs: bool = True) -> FastAPI:
    """The service app for ``settings``; ``start_jobs`` runs the background job worker."""
    settings = settings or ServiceSettings()
    context = ServiceContext(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context.warm_up()  # a gallery that cannot be opened stops the start, with its reason
        runner = jobs.start_runner(context) if start_jobs else None
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            context.close()

    app = FastAPI(
        title="facelens",
        version=__version__,
        description=(
            "Face recognition as a service. Send an API key as `Authorization: Bearer <key>` "
            "or `X-API-Key: <key>` (`facelens keys create --role query|enroll|admin`). "
            'Errors are `{"error": {"code": ..., "message": ...}}`.'
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = context
    app.openapi = lambda: contract_schema(app, context)  # type: ignore[method-assign]
    app.add_exception_handler(FaceLensError, _facelens_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(WorkerHeaderMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.max_request_bytes,
        limits=[
            (jobs.UPLOAD_PREFIX, settings.max_upload_bytes),
            (library.UPLOAD_PATH, settings.max_upload_bytes),
        ],
        body_timeout=settings.body_timeout,
        min_body_rate=settings.min_body_rate,
    )
    for module in (faces, people, jobs, session, analysis, library):
        app.include_router(module.router)
    mount_docs(app)
    mount_web(app, Path(settings.web_dir))
    return app


def mount_web(app: FastAPI, web_dir: Path) -> None:
    """The web page: static files of ``web_dir`` at ``/web/``; ``/`` redirects there.

    The files themselves hold no data and are served without a key; every
    API call the page makes needs one (the page logs in with ``POST /api/session``).
    """

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{WEB_MOUNT}/" if web_dir.is_dir() else "/docs")

    if web_dir.is_dir():
        app.mount(WEB_MOUNT, StaticFiles(directory=web_dir, html=True), name="web")


def app_from_env() -> FastAPI:
    """The factory uvicorn's worker processes call: settings from the environment."""
    return create_app(ServiceSettings.from_env())
