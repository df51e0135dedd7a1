"""Admission control: past `max_inflight` requests at once, a 503 `overloaded` before the body is even read.
On one core the event loop, not the model, saturates first; this bounds how long an admitted request waits.
Health probes and metrics scrapes neither wait nor take a slot."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import QueueFull, error_body, is_v2_path
from app.metrics import Metrics

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})
RETRY_AFTER_S = 1
SHED_MESSAGE = "too many requests in flight; retry shortly"


class AdmissionMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it costs a task per request). Sits inside RequestMiddleware, so a
    shed request still gets its request id and is counted."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_inflight: int = 256) -> None:
        self.app = app
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.inflight = 0
        # Built once for each error form (app.errors.error_body: the V2 one under /v2, the envelope elsewhere).
        self._shed = {
            v2: self._answer(error_body("/v2" if v2 else "/", QueueFull.code, SHED_MESSAGE)) for v2 in (False, True)
        }

    @staticmethod
    def _answer(body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]
        return headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            self.metrics.shed.inc()
            headers, body = self._shed[is_v2_path(scope["path"])]
            await send({"type": "http.response.start", "status": QueueFull.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)
