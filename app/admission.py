"""Admission control: past `max_inflight` requests at once, a 503 `overloaded` before the body is even read.
On one core the event loop, not the model, saturates first; this bounds how long an admitted request waits.
Health probes and metrics scrapes neither wait nor take a slot. `Slots` bounds one kind of CPU work (/read's images)
the same way: so many at once, so many more waiting, the rest turned away at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import RETRY_AFTER_S, DeadlineExceeded, QueueFull, error_body, is_v2_path, retry_headers
from app.metrics import Metrics

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})
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
        bodies = {v2: error_body("/v2" if v2 else "/", QueueFull.code, SHED_MESSAGE) for v2 in (False, True)}
        self._shed = {v2: (retry_headers(body), body) for v2, body in bodies.items()}

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


class Slots:
    """At most `slots` requests at once doing one kind of work, at most `queue` more waiting for a slot: past that a 503
    `overloaded` at once (with Retry-After), and one still waiting at its deadline a 504. As TensorFlow Serving's
    batching queue: a full queue turns requests away rather than growing until every answer comes too late.
    `what` names the work and the setting of each bound in the 503's message; `shed` counts those, `waiting` is told
    how many wait."""

    def __init__(
        self,
        slots: int,
        queue: int,
        what: tuple[str, str, str],
        shed: Callable[[], None] = lambda: None,
        waiting: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.slots, self.queue = slots, queue
        self._what, self._shed, self._told = what, shed, waiting
        self._free = asyncio.Semaphore(slots)
        self.waiting = 0

    @asynccontextmanager
    async def hold(self, deadline: float) -> AsyncIterator[None]:
        """A slot for the work in the block, waited for until `deadline` (the event loop's clock)."""
        if self._free.locked() and self.waiting >= self.queue:
            self._shed()
            work, slots_setting, queue_setting = self._what
            raise QueueFull(
                f"{work}: all {self.slots} slots busy ({slots_setting}) and {self.waiting} requests waiting for one "
                f"({queue_setting}); retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._wait(+1)
        try:
            async with asyncio.timeout_at(deadline):
                await self._free.acquire()
        except TimeoutError:
            raise DeadlineExceeded(f"{self._what[0]}: waited for a slot past the request deadline") from None
        finally:
            self._wait(-1)
        try:
            yield
        finally:
            self._free.release()

    def _wait(self, change: int) -> None:
        self.waiting += change
        self._told(self.waiting)
