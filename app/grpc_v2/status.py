"""Domain errors as gRPC status codes. The HTTP status each error already carries picks the code, so an
error class added for the REST side maps without a change here."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from app.errors import ServiceError

CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
RETRY_AFTER_S = "1"  # when the error names no Retry-After of its own


@dataclass(frozen=True)
class GrpcError:
    code: grpc.StatusCode
    message: str
    trailing_metadata: tuple[tuple[str, str], ...] = ()


def grpc_error(error: ServiceError) -> GrpcError:
    """The status, message and trailing metadata a domain error becomes. UNAVAILABLE (queue full, model not
    ready) carries a retry hint: `retry-after` in seconds, as the HTTP header, and gRPC's own retry pushback
    (`grpc-retry-pushback-ms`), which a client with a retry policy obeys."""
    code = CODES.get(error.status, grpc.StatusCode.INTERNAL)
    if code is not grpc.StatusCode.UNAVAILABLE:
        return GrpcError(code, error.message)
    retry = {k.lower(): v for k, v in error.headers.items()}.get("retry-after", RETRY_AFTER_S)
    pushback_ms = str(round(float(retry) * 1000)) if retry.replace(".", "", 1).isdigit() else "1000"
    return GrpcError(
        code,
        f"{error.message} (retry after {retry} s)",
        (("retry-after", retry), ("grpc-retry-pushback-ms", pushback_ms)),
    )
