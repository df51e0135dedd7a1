"""Build the app: settings, the model repository with its batchers, routes, error handlers, lifespan.
`python -m app` serves it (./models with no other setting)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.admission import AdmissionMiddleware, Slots
from app.compression import ResponseCompression
from app.config import Settings, get_settings
from app.errors import ServiceError, error_body
from app.head import HeadAsGet
from app.jobs import TrainingJobs
from app.logs import configure_logging, native_output_silenced
from app.metrics import Metrics, RequestMiddleware
from app.payloads import Limits
from app.repository import Loader, ModelRepository, RepositoryEvents
from app.routes import health, models, predict, read, train, ui, v2

log = logging.getLogger("lenet.app")
ROUTERS = (predict.router, read.router, v2.router, models.router, health.router, train.router, ui.router)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: dict[str, object] | None = None,
    *,
    path: str = "",
) -> Response:
    """An error answer to a request for `path`: app.errors.error_body picks the V2 or the envelope form."""
    body = error_body(path, code, message, details)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def create_app(settings: Settings | None = None, loader: Loader | None = None) -> FastAPI:
    """`loader` maps a version folder to a model; tests pass a fake so they need no TensorFlow."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal loader
        executor = None
        if loader is None:
            with native_output_silenced(settings.log_level):
                from app.model import SavedModelDigits, configure_devices, device_executor  # the TensorFlow import

                device = configure_devices()
            executor = device_executor(device)
            loader = lambda path: SavedModelDigits(path, device)
        events = RepositoryEvents(
            loaded=lambda name, version: metrics.model_version.labels(name).set(version),
            unloaded=lambda name: metrics.model_version.remove(name),
            refused=lambda name, version, reason: metrics.refused.labels(name).inc(),
            observer=metrics.observer,
        )
        repository = ModelRepository(settings, loader, executor, events)
        app.state.repository = repository
        await repository.start()
        jobs = TrainingJobs(settings)  # the training CLI gates against the repository itself
        app.state.jobs = jobs
        jobs.start()
        if settings.admin_token is None:  # the token itself is never logged
            log.info("admin endpoints are off: LENET_ADMIN_TOKEN is unset, empty or whitespace (403 admin_disabled)")
        else:
            log.info("admin endpoints are on: a bearer token from LENET_ADMIN_TOKEN")
        grpc_server = app.state.grpc_server = None
        if settings.grpc_port:
            from app.grpc_v2 import GrpcServer  # the gRPC stubs load only when gRPC is on

            grpc_server = app.state.grpc_server = GrpcServer(settings, repository, metrics, version=app.version)
            await grpc_server.start()
        # TensorFlow leaves ~10^6 long-lived Python objects; freezing them keeps every later full
        # garbage collection from walking them (those walks showed up as 100+ ms stalls in p99).
        gc.collect()
        gc.freeze()
        if not repository.ready:
            log.error(
                "default model %r not loaded from %s; /readyz answers 503", settings.default_model, settings.models_dir
            )
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop()  # before the repository: calls in flight still reach the batchers
            await jobs.close()
            await repository.close()

    # /docs and /redoc come from routes/ui.py on vendored scripts: FastAPI's own load them from a CDN.
    app = FastAPI(
        title="LeNet Serve",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Handwritten-digit recognition: LeNet-5 SavedModels behind a micro-batched REST API.",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.reading = Slots(
        settings.reading_slots,
        settings.max_read_queue,
        ("reading images", "LENET_READ_SLOTS", "LENET_MAX_READ_QUEUE"),
        shed=metrics.reads_shed.inc,
        waiting=metrics.reads_waiting.set,
    )
    app.state.limits = Limits(
        settings.max_body_bytes,
        settings.max_instances,
        settings.max_image_pixels,
        settings.body_timeout_s,
        settings.max_read_digits,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")

    @app.exception_handler(ServiceError)
    async def on_service_error(request: Request, exc: ServiceError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.details, path=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":  # a body that is not JSON at all: malformed, as the error table says
            return error_response(
                400,
                "bad_request",
                f"the body is not valid JSON: {first.get('ctx', {}).get('error', '')}",
                path=request.url.path,
            )
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return error_response(422, "invalid_request", message, path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, code, str(exc.detail), headers, path=request.url.path)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the server log", path=request.url.path)

    # The last added is the outermost: request ids and metrics wrap admission, so a shed request has both.
    app.add_middleware(HeadAsGet)  # innermost: routed as GET, counted and admitted as the HEAD it is
    app.add_middleware(ResponseCompression)  # only admitted requests spend CPU on gzip
    app.add_middleware(AdmissionMiddleware, metrics=metrics, max_inflight=settings.max_inflight_requests)
    # Its routes, each router's, to count a request turned away before routing under the route it was for.
    routes = [route for router in ROUTERS for route in router.routes]
    app.add_middleware(RequestMiddleware, metrics=metrics, routes=routes)
    return app


configure_logging(get_settings().log_level)
app = create_app()
