"""What app.metrics.RequestMiddleware and app.admission do for HTTP, for every unary gRPC call: an
x-request-id (the caller's, or a new one) sent back in the trailing metadata, count and latency in the
metrics, a bound on the calls in flight, and domain errors turned into status codes.

The id rides in the trailers because they go out with the status in one batch: sending initial metadata
of our own costs a separate write per call (~0.1 ms of a 0.4 ms ServerLive here)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from app.errors import QueueFull, ServiceError
from app.grpc_v2.status import GrpcError, grpc_error
from app.metrics import Metrics, new_request_id, usable_request_id

log = logging.getLogger("lenet.access")

REQUEST_ID = "x-request-id"
# Health and liveness answer however busy the server is, as /healthz and /readyz do.
UNLIMITED_METHODS = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
        "/inference.GRPCInferenceService/ModelReady",
    }
)
# Codes that mean the server, not the caller, could not answer: logged, as HTTP logs its 5xx.
SERVER_SIDE = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

Behavior = Callable[..., Any]  # a servicer method: async (request, context) -> response


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics, max_inflight: int) -> None:
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.inflight = 0
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}  # one wrapper per method, built once

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:  # unknown methods, streams (reflection, health Watch)
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, behavior: Behavior) -> Behavior:
        limited = method not in UNLIMITED_METHODS

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            request_id = _request_id(context.invocation_metadata()) or new_request_id()
            id_metadata = ((REQUEST_ID, request_id),)
            context.set_trailing_metadata(id_metadata)
            admitted = False
            try:
                if limited:
                    if self.inflight >= self.max_inflight:
                        self.metrics.shed.inc()
                        raise QueueFull("too many requests in flight; retry shortly")
                    self.inflight += 1
                    admitted = True
                response = await behavior(request, context)
            except ServiceError as exc:
                error = grpc_error(exc)
            except grpc.aio.AbortError:  # the method aborted by itself (grpc_health's Check, for one)
                self._record(method, context.code() or grpc.StatusCode.UNKNOWN, started, request_id)
                raise
            except asyncio.CancelledError:  # the caller went away, or its deadline passed
                self._record(method, grpc.StatusCode.CANCELLED, started, request_id)
                raise
            except Exception:
                log.exception("unexpected error in %s", method, extra={"request_id": request_id})
                error = GrpcError(grpc.StatusCode.INTERNAL, "internal error; see the server log")
            else:
                self._record(method, grpc.StatusCode.OK, started, request_id)
                return response
            finally:
                if admitted:
                    self.inflight -= 1
            # Counted before the status goes out, so a caller that has its answer also finds it in /metrics.
            self._record(method, error.code, started, request_id)
            await context.abort(error.code, error.message, id_metadata + error.trailing_metadata)

        return call

    def _record(self, method: str, code: grpc.StatusCode, started: float, request_id: str) -> None:
        elapsed = time.perf_counter() - started
        self.metrics.grpc_requests.labels(method, code.name).inc()
        self.metrics.grpc_latency.labels(method, code.name).observe(elapsed)
        if code in SERVER_SIDE:
            log.warning(
                "request",
                extra={"request_id": request_id, "method": method, "code": code.name, "ms": round(elapsed * 1000, 2)},
            )


def _request_id(metadata: grpc.aio.Metadata | None) -> str | None:
    for key, value in metadata or ():
        if key == REQUEST_ID:
            return usable_request_id(value if isinstance(value, str) else value.decode("latin-1"))
    return None
