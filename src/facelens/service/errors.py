"""Errors of the REST service, in the project's one hierarchy (each with a ``code``).

:func:`http_status` maps every :class:`~facelens.errors.FaceLensError` code to
the HTTP status the service answers with; the body is always
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from facelens.errors import (
    CalibrationError,
    ClusterFaceNotFoundError,
    CorrectionError,
    FaceLensError,
    FaceSelectionError,
    GalleryKeyError,
    GalleryModelMismatchError,
    GroupNotFoundError,
    ImageNotFoundError,
    ImageTooLargeError,
    InputError,
    InvalidNameError,
    PersonExistsError,
    PersonNotFoundError,
    TemplateNotFoundError,
)

__all__ = [
    "InvalidRequestError",
    "JobFileNotFoundError",
    "JobKindNotFoundError",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobRunningError",
    "KeyNotFoundError",
    "MalformedHTTPError",
    "MethodNotAllowedError",
    "NotAuthenticatedError",
    "OverloadedError",
    "PermissionDeniedError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RouteNotFoundError",
    "ServiceBusyError",
    "ServiceError",
    "TooManyConnectionsError",
    "UnsupportedMediaTypeError",
    "VideoTooLongError",
    "http_status",
]


class ServiceError(FaceLensError):
    """Something about an HTTP request (not the image in it) was wrong."""

    code = "service_error"
    status = 400


class NotAuthenticatedError(ServiceError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthenticated"
    status = 401


class PermissionDeniedError(ServiceError):
    """A valid key whose role does not allow this request."""

    code = "forbidden"
    status = 403


class RouteNotFoundError(ServiceError):
    code = "route_not_found"
    status = 404


class MethodNotAllowedError(ServiceError):
    code = "method_not_allowed"
    status = 405


class RequestTimeoutError(ServiceError):
    """The client sent its request body too slowly."""

    code = "request_timeout"
    status = 408


class RequestTooLargeError(ServiceError):
    code = "request_too_large"
    status = 413


class UnsupportedMediaTypeError(ServiceError):
    code = "unsupported_media_type"
    status = 415


class InvalidRequestError(ServiceError):
    """Parameters or form fields missing or malformed."""

    code = "invalid_request"
    status = 422


class VideoTooLongError(ServiceError):
    code = "video_too_long"
    status = 413


class JobNotFoundError(ServiceError):
    code = "job_not_found"
    status = 404


class JobFileNotFoundError(JobNotFoundError):
    """A job that has no result file of that name."""

    code = "job_file_not_found"


class JobKindNotFoundError(ServiceError):
    """``POST /api/jobs/<name>`` for a name that is no job kind: that path takes no POST."""

    code = "job_kind_not_found"
    status = 405


class JobNotReadyError(ServiceError):
    """The job has no result (yet, or because it failed)."""

    code = "job_not_ready"
    status = 409


class JobRunningError(ServiceError):
    """``DELETE`` of a job still queued or running: it is cancelled first
    (``POST /api/jobs/{id}/cancel``), then deleted."""

    code = "job_running"
    status = 409


class ServiceBusyError(ServiceError):
    """Every analysis slot stayed busy for the whole queue timeout."""

    code = "busy"
    status = 503


class MalformedHTTPError(ServiceError):
    """Bytes that are not an HTTP/1.1 request, or a request head over the size limit."""

    code = "bad_request"
    status = 400


class TooManyConnectionsError(ServiceError):
    """The client's address holds more open connections than the per-client cap."""

    code = "too_many_connections"
    status = 429


class OverloadedError(ServiceError):
    """The worker process is handling as many requests as it may at once."""

    code = "overloaded"
    status = 503


class KeyNotFoundError(ServiceError):
    code = "key_not_found"
    status = 404


_STATUS_BY_CLASS: list[tuple[type[FaceLensError], int]] = [
    (ImageNotFoundError, 422),  # a path the client named: the service never reads paths
    (ImageTooLargeError, 413),
    (InputError, 422),
    (FaceSelectionError, 422),
    (CalibrationError, 422),
    (PersonNotFoundError, 404),
    (TemplateNotFoundError, 404),
    (PersonExistsError, 409),
    (InvalidNameError, 422),
    (GroupNotFoundError, 404),  # the library's groups and faces
    (ClusterFaceNotFoundError, 404),
    (CorrectionError, 409),
    (GalleryModelMismatchError, 409),
    # The server's gallery key no longer opens the gallery (e.g. rotated while it ran):
    # the request was fine, the service cannot serve it until restarted with the new key.
    (GalleryKeyError, 503),
]


def http_status(error: FaceLensError) -> int:
    """The HTTP status for ``error``: 4xx for anything the request caused, else 500."""
    if isinstance(error, ServiceError):
        return error.status
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(error, cls):
            return status
    return 500
