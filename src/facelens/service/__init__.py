"""facelens as a service: a REST API and the web page, in one process (FastAPI + uvicorn).

Start it with ``facelens --gallery people.db serve --port 8000 [--workers 2]``
after creating a key: ``facelens --gallery people.db keys create --role admin --name me``.

**Authentication.** Every ``/api/*`` route except ``GET /api/health`` needs an
API key, sent as ``Authorization: Bearer fl_<id>_<secret>`` or
``X-API-Key: fl_<id>_<secret>``. Roles: ``query`` < ``enroll`` < ``admin``
(:mod:`facelens.service.keys`). No key or an unknown/revoked one: 401; a role
too low: 403. The web page logs in with ``POST /api/session`` and body
``{"key": "fl_..."}``: the key is checked and kept in an HttpOnly,
SameSite=Strict cookie ``facelens_key`` that authenticates the page's later
calls (``GET /api/session`` says who is logged in; ``DELETE /api/session``
logs out). Headers win over the cookie.

**The web page** is the static folder ``src/facelens/service/web/``, served
at ``/web/`` (``index.html`` at ``/web/``); ``/`` redirects there. Its files
are served without a key (they hold no data); everything it shows comes from
the API with the logged-in key.

**Routes** (OpenAPI at ``/openapi.json``, Swagger UI at ``/docs``, served
offline from the ``fastapi-offline`` package's files):

* ``POST /api/detect`` (multipart ``image``), ``POST /api/identify`` (``image``;
  query ``fmr``, ``threshold``, ``top_k``), ``POST /api/verify`` (``image_a``,
  ``image_b``): role query. Results give the image ``width``/``height`` and
  per face ``box`` ``[x, y, w, h]`` and ``landmarks`` ``[[x, y] x 5]`` in pixels.
* ``GET /api/people`` (query), ``POST /api/people`` (multipart ``name``,
  ``photos`` ...: enroll, created if new; enroll), ``GET /api/people/{name}``
  (query), ``PATCH /api/people/{name}`` ``{"name": new}`` (enroll),
  ``DELETE /api/people/{name}`` (admin), ``POST /api/people/{name}/photos``
  (enroll), ``GET /api/people/{name}/photos/{template_id}`` (the aligned face
  crop, JPEG; enroll), ``DELETE /api/people/{name}/photos/{template_id}`` (admin).
* ``GET /api/jobs/kinds``, ``POST /api/jobs/{kind}`` (multipart ``file``,
  ``params`` JSON), ``GET /api/jobs``, ``GET /api/jobs/{id}`` (state,
  ``progress`` 0-1, ``message``, ``result``), ``GET /api/jobs/{id}/result``
  (download), ``DELETE /api/jobs/{id}`` (cancel, or delete when finished).
* ``GET /api/audit`` (admin).

**Errors** are always ``{"error": {"code": "...", "message": "..."}}`` with
the :class:`~facelens.errors.FaceLensError` code (``details`` sometimes, e.g.
per-photo reasons when no photo of an enrollment was usable).

**State** (keys hashed, audit log, jobs) lives in ``<gallery>.service/``
beside the gallery (:mod:`facelens.service.settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facelens.service.settings import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServiceSettings", "create_app"]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI app (imported lazily so ``import facelens`` stays light)."""
    from facelens.service.app import create_app as build

    return build(settings)
