"""The real app (lifespan run for real, so its gRPC server listens on a free port) over a fake model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg

from app.config import Settings
from app.main import create_app
from tests.app.conftest import FakeLoader, FakeModel, add_version, fake_settings, loader  # noqa: F401 (fixture)
from tests.e2e.conftest import free_port


@dataclass
class Served:
    app: FastAPI
    channel: grpc.aio.Channel
    stub: pbg.GRPCInferenceServiceStub
    http: httpx.AsyncClient
    loader: FakeLoader

    def model(self, version: int = 1) -> FakeModel:
        return next(m for path, m in self.loader.loaded.items() if path.name == str(version))

    def taken(self) -> float:
        """Calls the batcher has taken from its queue to the model (held there while the model's delay is clear)."""
        return (
            self.app.state.metrics.registry.get_sample_value("lenet_queue_wait_seconds_count", {"model": "lenet5"}) or 0
        )


def infer_request(n: int = 1, name: str = "lenet5", version: str = "") -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=name, model_version=version)
    request.inputs.add(name="image", datatype="UINT8", shape=[n, 784])
    request.raw_input_contents.append(np.zeros((n, 784), np.uint8).tobytes())
    return request


@pytest.fixture
def settings(tmp_path) -> Settings:
    return fake_settings(tmp_path, max_delay_ms=1, grpc_port=free_port(), graceful_shutdown_s=5)


async def serve(settings: Settings, loader: FakeLoader) -> AsyncIterator[Served]:  # noqa: F811 (the fixture imported above)
    app = create_app(settings, loader)
    async with (
        app.router.lifespan_context(app),
        grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        yield Served(app, channel, pbg.GRPCInferenceServiceStub(channel), http, loader)
        for model in loader.loaded.values():
            model.delay.set()


@pytest.fixture
async def served(settings, loader) -> AsyncIterator[Served]:  # noqa: F811 (the fixture imported above)
    """lenet5 version 1 (answers 7) being served."""
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    async for value in serve(settings, loader):
        yield value
