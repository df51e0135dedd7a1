"""The gRPC server: V2 inference, the standard health service and server reflection (so grpcurl and k6 need
no .proto file) on one grpc.aio server in uvicorn's event loop. app.main starts it after the repository and
stops it before the repository closes; SIGTERM starts its graceful stop at once, alongside HTTP's drain."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from app.config import Settings
from app.grpc_v2.interceptor import CallInterceptor
from app.grpc_v2.servicer import SERVICE, InferenceServicer, add_to_server
from app.metrics import Metrics
from app.repository import ModelRepository

log = logging.getLogger("lenet.grpc")

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # the ones uvicorn handles


class HealthServicer(health.aio.HealthServicer):
    """grpc_health's servicer, except that Watch streams end once they have said NOT_SERVING at shutdown,
    instead of holding the graceful stop open for its whole grace period."""

    def __init__(self) -> None:
        super().__init__()
        self._watches: set[asyncio.Task[Any]] = set()
        self._shutting_down = False

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._watches.add(task)
        try:
            await super().Watch(request, context)
        except asyncio.CancelledError:
            if not self._shutting_down:
                raise  # the caller went away
        finally:
            self._watches.discard(task)

    async def enter_graceful_shutdown(self) -> None:
        self._shutting_down = True
        await super().enter_graceful_shutdown()
        await asyncio.sleep(0.05)  # the watchers write NOT_SERVING
        for task in self._watches:
            task.cancel()


class GrpcServer:
    def __init__(self, settings: Settings, repository: ModelRepository, metrics: Metrics, version: str) -> None:
        self.settings = settings
        self.repository = repository
        self.health = HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[CallInterceptor(metrics, settings.max_inflight_requests)],
            options=[
                ("grpc.max_receive_message_length", settings.grpc_max_receive_bytes),
                ("grpc.so_reuseport", 0),  # a second server on the same port fails instead of sharing it
            ],
        )
        add_to_server(InferenceServicer(repository, settings.max_instances, version), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.address = f"[{settings.host}]" if ":" in settings.host else settings.host
        try:
            self.port = self.server.add_insecure_port(f"{self.address}:{settings.grpc_port}")
        except RuntimeError as exc:  # grpc's "Failed to bind"
            raise RuntimeError(f"gRPC cannot listen on {self.address}:{settings.grpc_port} ({exc})") from None
        self._watch: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._previous_handlers: dict[int, Any] = {}

    async def start(self) -> None:
        await self.server.start()
        await self._set_health()
        self._watch = asyncio.get_running_loop().create_task(self._watch_readiness(), name="grpc-health")
        self._chain_exit_signals()
        log.info("gRPC (KServe V2, health, reflection) on %s:%d", self.address, self.port)

    async def stop(self) -> None:
        """Graceful: health says NOT_SERVING, new calls are refused, calls in flight get
        LENET_GRACEFUL_SHUTDOWN_S to finish and are then cancelled."""
        self.begin_stop()
        assert self._stopping is not None
        await self._stopping
        self._restore_exit_signals()

    def begin_stop(self) -> None:
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop(), name="grpc-stop")

    async def _stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.graceful_shutdown_s)
        log.info("gRPC stopped")

    async def _set_health(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.repository.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE):  # "" is the whole server, as the protocol asks
            await self.health.set(service, status)

    async def _watch_readiness(self) -> None:
        """Readiness changes when the repository polls (a default model appears); follow it at that pace."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            await self._set_health()

    def _chain_exit_signals(self) -> None:
        """SIGTERM and SIGINT start the gRPC stop at once, then go on to the handlers in place (uvicorn's),
        so gRPC drains alongside HTTP instead of after it. Signal handlers live in the main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def on_exit(sig: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.begin_stop)
            previous = self._previous_handlers.get(sig)
            if callable(previous):
                previous(sig, frame)

        for sig in EXIT_SIGNALS:
            self._previous_handlers[sig] = signal.signal(sig, on_exit)

    def _restore_exit_signals(self) -> None:
        for sig, previous in self._previous_handlers.items():
            signal.signal(sig, previous)
        self._previous_handlers.clear()
