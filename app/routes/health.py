from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import MetricsDep, RepositoryDep
from app.schemas import ERROR_RESPONSES, HealthResponse, LivenessResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=LivenessResponse)
async def get_liveness() -> dict[str, object]:
    """The process is alive (says nothing about the model)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=HealthResponse, responses=ERROR_RESPONSES)
async def get_readiness(repository: RepositoryDep) -> dict[str, object]:
    """A model is loaded and warmed up: 503 until then."""
    if not repository.ready:
        raise repository.not_ready()
    return {
        "status": "ready",
        "models": {
            name: served.version
            for name in repository.model_names()
            if (served := repository.serving(name)) is not None
        },
    }


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def get_metrics(metrics: MetricsDep, repository: RepositoryDep) -> Response:
    """Prometheus metrics: requests, latency, batch sizes, queue, inference time, versions, rejections."""
    for name in repository.model_names():
        served = repository.serving(name)
        if served is not None:
            metrics.queue_depth.labels(name).set(served.batcher.queued_images)
            metrics.model_version.labels(name).set(served.version)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
