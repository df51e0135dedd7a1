"""Dependencies as Annotated aliases: routes ask for what they need; tests swap them.
All are `async def`: FastAPI runs plain `def` dependencies in a thread pool, a hop per request."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.admission import Slots
from app.config import Settings
from app.errors import AdminDisabled, Unauthorized, UnsupportedMediaType
from app.jobs import TrainingJobs
from app.metrics import Metrics
from app.payloads import Limits, media_type
from app.repository import ModelRepository


# app.state is untyped: each getter names the type that create_app stored there.
async def get_repository(request: Request) -> ModelRepository:
    repository: ModelRepository = request.app.state.repository
    return repository


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


async def get_reading(request: Request) -> Slots:
    reading: Slots = request.app.state.reading
    return reading


def request_deadline(request: Request) -> float:
    """When the request's time is up, on the event loop's clock: LENET_REQUEST_TIMEOUT_S from its arrival
    (app.metrics.RequestMiddleware notes it). A plain call, not a dependency: /predict's hot path pays for none."""
    settings: Settings = request.app.state.settings
    arrived = getattr(request.state, "arrived", None) or asyncio.get_running_loop().time()
    return float(arrived) + settings.request_timeout_s


RepositoryDep = Annotated[ModelRepository, Depends(get_repository)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
ReadingDep = Annotated[Slots, Depends(get_reading)]


async def get_jobs(request: Request) -> TrainingJobs:
    jobs: TrainingJobs = request.app.state.jobs
    return jobs


async def require_admin(request: Request, settings: SettingsDep) -> None:
    """Bearer token from LENET_ADMIN_TOKEN, compared in constant time; no token configured: disabled."""
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        raise AdminDisabled(
            "admin endpoints are disabled: set LENET_ADMIN_TOKEN to a secret and restart to enable them"
        )
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = settings.admin_token.get_secret_value()
    # Hash both sides first: compare_digest is constant-time only for inputs of equal length.
    matches = hmac.compare_digest(
        hashlib.sha256(presented.strip().encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
    if scheme.lower() != "bearer" or not matches:
        raise Unauthorized(
            "missing or wrong admin token: send Authorization: Bearer <LENET_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


JobsDep = Annotated[TrainingJobs, Depends(get_jobs)]
AdminDep = Depends(require_admin)


async def require_json(request: Request) -> None:
    """A JSON body (or one without a Content-Type, read as JSON): any other media type is 415, as on /predict."""
    kind = media_type(request)
    if kind not in ("", "application/json"):
        raise UnsupportedMediaType(f"content type {kind!r} is not accepted; send application/json")


JsonBodyDep = Depends(require_json)
