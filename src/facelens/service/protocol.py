"""The HTTP/1.1 protocol ``facelens serve`` runs on: uvicorn's h11 protocol, guarded against slow clients.

uvicorn 0.54 closes an idle keep-alive connection, but never one that sends its
request head slowly (or nothing at all), and its ``limit_concurrency`` counts
open connections: a few hundred stalled sockets lock every client out with a
plain-text 503. :class:`GuardedH11Protocol` (``uvicorn --http`` takes its
import path) adds, with the limits of
:class:`~facelens.service.settings.ServiceSettings`:

* a header timeout: a connection must deliver a complete request line and
  headers within ``header_timeout`` seconds of being opened, or of the end of
  the previous response; else it gets a 408 (when part of a request came) and
  is closed. A connection whose request body is still arriving after its
  response (a 408 or 413 for instance) is closed at once;
* a cap of open connections per client address: requests on connections beyond
  ``max_connections_per_client`` are answered 429 and the connection is closed;
* a limit of ``max_requests_in_progress`` requests handled at once (503): it
  counts requests, not open connections, so stalled sockets do not use it up;
* every refusal, the 400 for bytes that are not HTTP included, in the JSON
  error shape ``{"error": {"code", "message"}}``.

The slow-body guard (a minimum average rate) is in
:class:`~facelens.service.limits.BodyLimitMiddleware`. Every count is per
worker process: with ``--workers N`` a client may hold up to N times the cap.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from facelens import settings
from facelens.service.errors import (
    MalformedHTTPError,
    OverloadedError,
    RequestTimeoutError,
    ServiceError,
    TooManyConnectionsError,
)
from facelens.service.limits import error_body, reject
from facelens.service.settings import ServiceSettings

__all__ = ["PROTOCOL_PATH", "GuardedH11Protocol"]

PROTOCOL_PATH = "facelens.service.protocol:GuardedH11Protocol"
"""What ``facelens serve`` passes to uvicorn as ``http``."""

RETRY_AFTER = (b"retry-after", b"5")

_open_by_address: weakref.WeakKeyDictionary[ServerState, Counter[str]] = weakref.WeakKeyDictionary()
"""Open connections per client address, for each server in this process."""


@lru_cache(maxsize=4)
def _settings(text: str | None) -> ServiceSettings:
    return ServiceSettings.from_json(text) if text else ServiceSettings()


def current_settings() -> ServiceSettings:
    """The service settings of this worker process (``$FACELENS_SERVICE_SETTINGS``), parsed once."""
    return _settings(settings.service_settings())


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header timeout, a per-client cap and JSON refusals."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = current_settings()
        self.header_timeout = settings.header_timeout
        self.max_per_client = settings.max_connections_per_client
        self.max_in_progress = settings.max_requests_in_progress
        self.limit_concurrency = None  # uvicorn's check counts idle sockets, answers plain text
        self.inner_app = self.app
        self.app = self.guarded_app
        self.open_by_address = _open_by_address.setdefault(server_state, Counter())
        self.address: str | None = None
        self.over_cap = False
        self.header_timer: asyncio.TimerHandle | None = None
        self.timed_cycle: RequestResponseCycle | None = None  # the cycle before the awaited head
        self.head_bytes = 0

    # Connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client is not None:
            self.address = self.client[0]
            self.open_by_address[self.address] += 1
            self.over_cap = self.open_by_address[self.address] > self.max_per_client
        self.arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_header_timer()
        if self.address is not None:
            self.open_by_address[self.address] -= 1
            if self.open_by_address[self.address] <= 0:
                del self.open_by_address[self.address]
            self.address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.header_timer is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        self.cancel_header_timer_if_head_arrived()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()  # answered before its body ended: the rest is never read
        if not self.transport.is_closing():
            self.arm_header_timer()  # before: a pipelined request is parsed inside
        super().on_response_complete()
        self.cancel_header_timer_if_head_arrived()

    # The header timeout

    def arm_header_timer(self) -> None:
        self.cancel_header_timer()
        self.timed_cycle = self.cycle
        self.head_bytes = 0
        self.header_timer = self.loop.call_later(self.header_timeout, self.header_timed_out)

    def cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def cancel_header_timer_if_head_arrived(self) -> None:
        if self.header_timer is not None and self.cycle is not self.timed_cycle:
            self.cancel_header_timer()  # every new request head makes a new cycle

    def header_timed_out(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        if self.head_bytes and self.conn.their_state is h11.IDLE:  # part of a head came
            error = RequestTimeoutError(
                f"the request line and headers took longer than {self.header_timeout:g} s"
            )
            self.transport.write(_raw_response(error))
        self.transport.close()

    # Refusals

    async def guarded_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, unless the connection is over the per-client cap or the worker is full."""
        if self.over_cap:
            await reject(
                send,
                TooManyConnectionsError(
                    f"more than {self.max_per_client} open connections from {self.address}; "
                    "close some and try again"
                ),
                [RETRY_AFTER],
            )
        elif len(self.tasks) > self.max_in_progress:  # this request's task is in the set
            await reject(
                send,
                OverloadedError(
                    f"the server is handling {self.max_in_progress} requests; try again shortly"
                ),
                [RETRY_AFTER],
            )
        else:
            await self.inner_app(scope, receive, send)

    def send_400_response(self, msg: str) -> None:
        error = MalformedHTTPError(
            "the request is not valid HTTP/1.1, or its request line and headers are "
            "larger than 16 KiB"
        )
        body = error_body(error)
        event = h11.Response(
            status_code=400,
            reason=b"Bad Request",
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        )
        self.transport.write(self.conn.send(event) or b"")
        self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()


def _raw_response(error: ServiceError) -> bytes:
    """A complete HTTP/1.1 response for ``error``, written when h11 has no request to answer."""
    body = error_body(error)
    head = (
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
