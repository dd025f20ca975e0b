"""Multipart uploads: a part that declares a binary type is a file, with or without a name.

RFC 7578 (section 4.2) makes the ``filename`` of a file part optional
(SHOULD, not MUST), but Starlette reads every part without one as a text
field, so ``photos`` sent as ``Content-Type: image/jpeg`` with no file name
would be refused as "not a file". :class:`UploadRoute` (the route class of the
routers that take uploads) parses forms with :class:`FilePartsParser`, which
treats such a part as a file named ``""`` (results then call it ``upload``).
Parts without a declared type, ``text/*`` and JSON parts stay fields.

A field the route takes once (``image``, ``name``) sent in several parts is
refused (422 ``invalid_request``) rather than silently answered for its last
part only; fields declared as lists (``photos``) take many.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Coroutine
from contextlib import aclosing
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from facelens.service.errors import InvalidRequestError

__all__ = ["UploadRoute"]

_FIELD_TYPES = (b"text/", b"application/json", b"application/x-www-form-urlencoded")


class FilePartsParser(MultiPartParser):
    """Starlette's parser, except that a part declaring a binary type is always a file."""

    def on_headers_finished(self) -> None:
        part = self._current_part
        declared = next((v for k, v in part.item_headers if k == b"content-type"), b"")
        media_type = declared.split(b";")[0].strip().lower()
        disposition = part.content_disposition or b""
        _, options = parse_options_header(disposition)
        if media_type and not media_type.startswith(_FIELD_TYPES) and b"filename" not in options:
            part.content_disposition = disposition + b'; filename=""'
        super().on_headers_finished()


class FilePartsRequest(Request):
    """A request whose multipart form is read by :class:`FilePartsParser`."""

    async def _get_form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> FormData:
        content_type, _ = parse_options_header(self.headers.get("Content-Type"))
        if self._form is None and content_type == b"multipart/form-data":
            try:
                async with aclosing(self.stream()) as stream:
                    parser = FilePartsParser(
                        self.headers,
                        stream,
                        max_files=max_files,
                        max_fields=max_fields,
                        max_part_size=max_part_size,
                    )
                    self._form = await parser.parse()
            except MultiPartException as exc:
                raise HTTPException(status_code=400, detail=exc.message) from exc
        return await super()._get_form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
        )


class UploadRoute(APIRoute):
    """The route class of routers that take uploads: forms read with :class:`FilePartsParser`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        once = _single_fields(self)

        async def with_file_parts(request: Request) -> Response:
            parts = FilePartsRequest(request.scope, request.receive, request._send)
            if once and parse_options_header(request.headers.get("Content-Type"))[0] == (
                b"multipart/form-data"
            ):
                form = await parts.form()
                for name in once:
                    sent = len(form.getlist(name))
                    if sent > 1:
                        raise InvalidRequestError(
                            f"send one {name!r} part ({sent} were sent); a request takes one"
                        )
            return await handler(parts)

        return with_file_parts


def _single_fields(route: APIRoute) -> set[str]:
    """The form fields ``route`` takes once: every body field not declared as a list."""
    names = set()
    for param in route.dependant.body_params:
        annotation = param.field_info.annotation
        kinds = typing.get_args(annotation) if typing.get_origin(annotation) else ()
        is_list = typing.get_origin(annotation) in (list, tuple) or any(
            typing.get_origin(kind) in (list, tuple) for kind in kinds
        )
        if not is_list:
            names.add(param.alias)
    return names
