"""Prometheus metrics, in a registry per app (tests build many apps), and the ASGI middleware that
times every request and gives it an X-Request-ID."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.batching import BatchObserver
from app.errors import ShuttingDown, error_body, retry_headers

log = logging.getLogger("lenet.access")

# Request ids: a random per-process prefix and a counter (uuid4 costs a urandom call per request).
_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)

# Up to a minute: a request may take its body's time (LENET_BODY_TIMEOUT_S) and then its own (LENET_REQUEST_TIMEOUT_S);
# an outside check's 12-44 s answers all fell in +Inf with the last bucket at 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lenet_requests_total", "HTTP requests by route and status", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "lenet_request_seconds",
            "HTTP request latency by route and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.grpc_requests = Counter(
            "lenet_grpc_requests_total", "gRPC calls by method and status code", ["method", "code"], registry=r
        )
        self.grpc_latency = Histogram(
            "lenet_grpc_request_seconds",
            "gRPC call latency by method and status code",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "lenet_batch_size", "images per model call", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "lenet_queue_wait_seconds",
            "time an image waited for its batch",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "lenet_inference_seconds", "model call time per batch", ["model"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.images = Counter(
            "lenet_images_predicted_total",
            "28x28 images predicted (of /read: its candidate digits)",
            ["model"],
            registry=r,
        )
        self.no_digit = Counter(
            "lenet_no_digit_total",
            "images answered with no digit (never sent to a model), by reason",
            ["reason"],
            registry=r,
        )
        self.rejected = Counter(
            "lenet_rejected_total", "requests turned away because the queue was full", ["model"], registry=r
        )
        self.queue_depth = Gauge("lenet_queue_depth_images", "images waiting for a batch", ["model"], registry=r)
        self.model_version = Gauge("lenet_model_version", "version being served", ["model"], registry=r)
        self.shed = Counter(
            "lenet_shed_requests_total", "requests answered 503 at once: too many in flight", registry=r
        )
        self.inflight = Gauge("lenet_inflight_requests", "requests being handled", registry=r)
        self.reads_shed = Counter(
            "lenet_reads_shed_total",
            "/read requests answered 503 at once: every reading slot busy and LENET_MAX_READ_QUEUE waiting",
            registry=r,
        )
        self.reads_waiting = Gauge("lenet_reads_waiting", "/read requests waiting for a reading slot", registry=r)
        self.refused = Counter("lenet_versions_refused_total", "versions refused as broken", ["model"], registry=r)

    def observer(self, model: str) -> BatchObserver:
        batch_size, inference, images = (
            self.batch_size.labels(model),
            self.inference.labels(model),
            self.images.labels(model),
        )

        def batch(size: int, seconds: float) -> None:
            batch_size.observe(size)
            inference.observe(seconds)
            images.inc(size)

        return BatchObserver(
            batch=batch, queue_wait=self.queue_wait.labels(model).observe, rejected=self.rejected.labels(model).inc
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it costs a task per request): request id, count and latency of
    every request, those app.admission turns away included."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's: a request turned away before routing is counted under its route too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["arrived"] = asyncio.get_running_loop().time()  # app.deps.get_deadline counts the timeout from it
        status, started_answer = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_answer
            if message["type"] == "http.response.start":
                started_answer = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when LENET_GRACEFUL_SHUTDOWN_S runs out; unanswered, it would
            # send a plain-text 500 and log a traceback for each. The request ends here, answered as what happened.
            if started_answer:
                raise
            await _answer_shutting_down(scope, send_with_id)
        finally:
            route = scope.get("route") or _route_of(scope, self.routes)
            path = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.latency.labels(path, scope["method"], str(status)).observe(elapsed)
            if status >= 500:
                log.warning(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )


def _route_of(scope: Scope, routes: Sequence[BaseRoute]) -> BaseRoute | None:
    """The route a request not routed (app.admission turned it away first) was for; None for a path none serves."""
    for route in routes:
        if route.matches(scope)[0] == Match.FULL:
            return route
    return None


async def _answer_shutting_down(scope: Scope, send: Send) -> None:
    body = error_body(
        scope["path"], ShuttingDown.code, "the server stopped before answering; retry (another replica answers)"
    )
    await send({"type": "http.response.start", "status": ShuttingDown.status, "headers": retry_headers(body)})
    await send({"type": "http.response.body", "body": body})


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            return usable_request_id(value.decode("latin-1"))
    return None


def usable_request_id(text: str) -> str | None:
    """A caller's request id as we keep it (first 128 characters), or None when it is not printable."""
    text = text[:128]
    return text if text.isprintable() else None


def new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_ids):x}"
