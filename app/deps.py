"""Dependencies as Annotated aliases: routes ask for what they need; tests swap them."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.metrics import Metrics
from app.payloads import Limits
from app.repository import ModelRepository


def get_repository(request: Request) -> ModelRepository:
    return request.app.state.repository


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_limits(request: Request) -> Limits:
    return request.app.state.limits


RepositoryDep = Annotated[ModelRepository, Depends(get_repository)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
