"""Hardened input: body size and read-time limits, content types, safe image decoding.

:class:`BodyLimitMiddleware` refuses a request whose declared or actual body
is larger than the limit of its route (413), whose body stalls for longer
than ``body_timeout`` seconds between chunks, or whose body arrives slower than
``min_body_rate`` bytes per second on average after a grace of
:data:`~facelens.service.settings.BODY_RATE_GRACE` seconds (408: a byte every
few seconds would never stall), before any handler sees it. Uploaded images must be declared as ``image/*`` (or
``application/octet-stream``) and are decoded with the pixel limit checked
before decoding; anything Pillow cannot read is a 422, never a 500.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facelens.errors import FaceLensError, ImageDecodeError
from facelens.io.image import DecodedImage, load_image
from facelens.service.errors import (
    InvalidRequestError,
    RequestTimeoutError,
    RequestTooLargeError,
    ServiceError,
    UnsupportedMediaTypeError,
)
from facelens.service.settings import BODY_RATE_GRACE

__all__ = [
    "BodyLimitMiddleware",
    "BodyRejectedError",
    "check_count",
    "decode_image",
    "error_body",
    "read_image",
    "reject",
    "require_multipart",
    "upload_label",
]

IMAGE_TYPES = ("image/", "application/octet-stream")
"""Declared content types an image upload may carry (the bytes decide in the end)."""


def error_body(error: FaceLensError | ServiceError) -> bytes:
    return json.dumps({"error": {"code": error.code, "message": str(error)}}).encode()


class BodyLimitMiddleware:
    """Size and time limits on request bodies, per path prefix.

    Args:
        app: the wrapped ASGI app.
        default_limit: largest body in bytes for every route not in ``limits``.
        limits: ``(path prefix, bytes)`` pairs for routes with their own limit.
        body_timeout: longest wait for the next body chunk, in seconds.
        min_body_rate: slowest average body rate in bytes per second once the
            body is older than :data:`BODY_RATE_GRACE` seconds; 0: no minimum.
    """

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        limits: list[tuple[str, int]],
        body_timeout: float,
        min_body_rate: float = 0.0,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = sorted(limits, key=lambda item: -len(item[0]))
        self.body_timeout = body_timeout
        self.min_body_rate = min_body_rate

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await reject(send, _too_large(declared, limit))
            return
        received = 0
        started: float | None = None  # event-loop time of the first wait for the body
        body_complete = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, started, body_complete
            if body_complete:  # e.g. a wait for the disconnect: no body limit applies
                return await receive()
            now = asyncio.get_running_loop().time()
            started = now if started is None else started
            wait, too_slow = self.body_timeout, False
            if self.min_body_rate > 0:
                # by now + wait the body must average min_body_rate since the grace ended
                rate_deadline = started + BODY_RATE_GRACE + received / self.min_body_rate
                if rate_deadline - now < wait:
                    wait, too_slow = max(rate_deadline - now, 0.0), True
            try:
                message = await asyncio.wait_for(receive(), timeout=wait)
            except TimeoutError:
                raise BodyRejectedError(
                    RequestTimeoutError(
                        f"the request body arrived slower than {self.min_body_rate:,.0f} bytes/s"
                        if too_slow
                        else f"the request body stalled for more than {self.body_timeout:.0f} s"
                    )
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyRejectedError(_too_large(received, limit))
                body_complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRejectedError as rejected:
            if not response_started:
                await reject(send, rejected.error)


class BodyRejectedError(HTTPException):
    """Raised from ``receive`` when a body breaks a limit.

    An :class:`HTTPException` so that FastAPI's body parsing passes it on
    unchanged; the app's handler answers with ``error``.
    """

    def __init__(self, error: ServiceError) -> None:
        super().__init__(status_code=error.status, detail=str(error))
        self.error = error


def _too_large(size: int, limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is {size:,} bytes or more; the limit here is {limit:,} bytes"
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def reject(
    send: Send, error: ServiceError, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer ``error`` in the service's JSON error shape and close the connection."""
    body = error_body(error)
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def require_multipart(request: Request) -> None:
    """A dependency for upload routes: the body must be ``multipart/form-data`` (else 415)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            f"send the files as multipart/form-data, not {content_type or 'no content type'!r}"
        )


def upload_label(upload: UploadFile, fallback: str = "upload") -> str:
    """How an uploaded file is named in results and the audit log (its base name, 200 chars)."""
    name = (upload.filename or fallback).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in name if ch.isprintable())[:200]
    return cleaned or fallback


def check_image_type(upload: UploadFile) -> None:
    declared = (upload.content_type or "application/octet-stream").lower()
    if not declared.startswith(IMAGE_TYPES):
        raise UnsupportedMediaTypeError(
            f"{upload_label(upload)}: declared as {declared!r}; upload an image "
            "(JPEG, PNG, WEBP, GIF, BMP or TIFF)"
        )


async def read_image(upload: UploadFile, max_pixels: int) -> DecodedImage:
    """Check, read and decode one uploaded image; every failure is a 4xx :class:`FaceLensError`.

    The decoding runs in the thread pool: a 2000x1428 progressive JPEG takes about
    50 ms of CPU, during which the event loop keeps reading the other requests.
    """
    check_image_type(upload)
    label = upload_label(upload)
    data = await upload.read()
    if not data:
        raise ImageDecodeError(f"{label}: the file is empty")
    return await run_in_threadpool(decode_image, data, label, max_pixels)


def decode_image(data: bytes, label: str, max_pixels: int) -> DecodedImage:
    """Decode bytes with the pixel limit; any decoder failure becomes :class:`ImageDecodeError`."""
    try:
        return load_image(data, max_pixels=max_pixels, label=label)
    except FaceLensError:
        raise
    except Exception as exc:  # a hostile file can make a decoder raise anything
        raise ImageDecodeError(f"{label}: the image could not be decoded ({exc})") from exc


def check_count(items: list[Any], limit: int, what: str) -> None:
    if not items:
        raise InvalidRequestError(f"no {what} in the request")
    if len(items) > limit:
        raise InvalidRequestError(f"{len(items)} {what} in one request; the limit is {limit}")
