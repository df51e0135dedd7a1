"""Domain errors. Each carries its HTTP status and a stable code; app.main turns them into
{"error": {"code": ..., "message": ...}} answers (`envelope`), or into the inference protocol's
{"error": "<message>"} under /v2 (`error_body` decides). Nothing here imports FastAPI or TensorFlow."""

from __future__ import annotations

import orjson

V2_PREFIX = "/v2"
RETRY_AFTER_S = 1  # what a 503 that asks for a retry (overloaded, shutting down) says to wait
REASON_LENGTH = 300  # a refused version's reason, as GET /models and a pinned request's 404 show it


def envelope(code: str, message: str, details: dict[str, object] | None = None) -> bytes:
    """The one JSON error body of the service's own routes."""
    return orjson.dumps({"error": {"code": code, "message": message, **(details or {})}})


def is_v2_path(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def retry_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    """The ASGI headers of an error `body` sent by hand, before or outside routing (a shed request, one stopped by a
    shutdown): JSON, its length, and a retry after RETRY_AFTER_S."""
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
    ]


def error_body(path: str, code: str, message: str, details: dict[str, object] | None = None) -> bytes:
    """The error body for a request to `path`, the one place that picks its form: the Open Inference Protocol
    (V2) writes errors as {"error": "<message>"} and its clients (tritonclient, kserve, MLServer) read them so;
    every other route answers with the service's envelope."""
    if is_v2_path(path):
        return orjson.dumps({"error": message})
    return envelope(code, message, details)


def brief(text: str, limit: int) -> str:
    """The first line of `text` with anything in it, at most `limit` characters: cut after a whole word, with an
    ellipsis, so a reason shown to a client or logged never ends mid-word."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= limit:
        return line
    head = line[: limit - 1]
    if not line[limit - 1].isspace() and any(c.isspace() for c in head):
        head = head[: max(i for i, c in enumerate(head) if c.isspace())]
    return head.rstrip() + "…"


class ServiceError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details  # extra fields for the error envelope, e.g. the running job's id


class BadImage(ServiceError):
    """An upload that is not a readable image of a supported format."""

    status = 400
    code = "bad_image"


class ImageTooLarge(BadImage):
    """Too many pixels to decode safely (decompression bomb guard)."""

    code = "image_too_large"


class BadArray(ServiceError):
    """A JSON instance or tensor that is not a valid 28x28 digit."""

    status = 400
    code = "bad_array"


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


class RequestTimeout(ServiceError):
    """The client took too long to send its body (a slow or stalled upload)."""

    status = 408
    code = "request_timeout"


class TooManyInstances(ServiceError):
    status = 400
    code = "too_many_instances"


class TooManyDigits(ServiceError):
    """An image to read holds more digits (or separate marks) than a reading may have."""

    status = 400
    code = "too_many_digits"


class TooManyCandidates(TooManyDigits):
    """An image to read would offer the model more candidate digits than it may (its own bound, or what is left
    of its request's): the same answer, told apart where the request's share is what ran out."""


class BodyTooLarge(ServiceError):
    status = 413
    code = "body_too_large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


class ModelNotFound(ServiceError):
    status = 404
    code = "model_not_found"


class ModelNotReady(ServiceError):
    status = 503
    code = "model_not_ready"


class ShuttingDown(ServiceError):
    """The server stopped (SIGTERM) before it answered: its graceful shutdown ran out of time for this request."""

    status = 503
    code = "shutting_down"


class QueueFull(ServiceError):
    """The batching queue is at its bound: turn the request away now instead of queueing it."""

    status = 503
    code = "overloaded"


class DeadlineExceeded(ServiceError):
    status = 504
    code = "deadline_exceeded"


class AdminDisabled(ServiceError):
    status = 403
    code = "admin_disabled"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class JobNotFound(ServiceError):
    status = 404
    code = "job_not_found"


class JobConflict(ServiceError):
    """One training job at a time."""

    status = 409
    code = "job_running"


class BrokenModel(Exception):
    """A version that cannot serve: missing files, wrong signature, or a failed smoke prediction.
    Never sent to a client: the repository logs it and keeps the current version."""
