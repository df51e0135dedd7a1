"""Admission control: past `max_inflight` requests at once, a 503 `overloaded` before the body is even read.
On one core the event loop, not the model, saturates first; this bounds how long an admitted request waits.
Health probes and metrics scrapes neither wait nor take a slot."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import QueueFull, envelope
from app.metrics import Metrics

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})
RETRY_AFTER_S = 1


class AdmissionMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it costs a task per request). Sits inside RequestMiddleware, so a
    shed request still gets its request id and is counted."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_inflight: int = 256) -> None:
        self.app = app
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.inflight = 0
        self._shed_body = envelope(QueueFull.code, "too many requests in flight; retry shortly")
        self._shed_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._shed_body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            self.metrics.shed.inc()
            await send({"type": "http.response.start", "status": QueueFull.status, "headers": self._shed_headers})
            await send({"type": "http.response.body", "body": self._shed_body})
            return
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)
