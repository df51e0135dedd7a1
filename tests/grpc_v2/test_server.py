"""The gRPC server's life: health as the repository becomes ready, reflection, message limits, and a graceful
stop that lets calls in flight finish, ends health watches, and starts on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tritonclient.grpc import service_pb2 as pb

from app.main import create_app
from tests.app.conftest import add_version
from tests.conftest import async_wait_until
from tests.grpc_v2.conftest import infer_request, serve

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def health_of(channel: grpc.aio.Channel, service: str = "") -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    return answer.status


async def test_health_turns_serving_when_the_default_model_is_ready(settings, loader):
    async for served in serve(settings, loader):
        assert await health_of(served.channel) == NOT_SERVING
        assert await health_of(served.channel, "inference.GRPCInferenceService") == NOT_SERVING
        add_version(settings.models_dir, "lenet5", 1)
        for _ in range(200):
            if await health_of(served.channel) == SERVING:
                break
            await asyncio.sleep(0.02)
        assert await health_of(served.channel, "inference.GRPCInferenceService") == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_of(served.channel, "no.such.Service")
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_the_services_so_clients_need_no_proto_file(served):
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    answers = [
        a
        async for a in stub.ServerReflectionInfo(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="inference.ModelInferRequest"),
                ]
            )
        )
    ]
    assert {s.name for s in answers[0].list_services_response.service} == {
        "inference.GRPCInferenceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert answers[1].file_descriptor_response.file_descriptor_proto  # the .proto, served to the client


async def test_a_message_over_the_limit_is_refused_with_resource_exhausted(settings, loader):
    add_version(settings.models_dir, "lenet5", 1)
    async for served in serve(settings.model_copy(update={"grpc_max_message_bytes": 100_000}), loader):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ModelInfer(infer_request(200))  # 156,800 bytes of pixels
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await served.stub.ModelInfer(infer_request(100))).model_version == "1"


def test_the_message_limit_follows_the_body_limit_unless_set(settings):
    assert settings.grpc_max_receive_bytes == settings.max_body_bytes
    assert settings.model_copy(update={"grpc_max_message_bytes": 4096}).grpc_max_receive_bytes == 4096


async def test_port_zero_turns_grpc_off(settings, loader):
    app = create_app(settings.model_copy(update={"grpc_port": 0}), loader)
    async with app.router.lifespan_context(app):
        assert app.state.grpc_server is None


async def test_a_port_in_use_stops_the_start_with_its_address(settings, loader):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.grpc_port))
        taken.listen()
        app = create_app(settings, loader)
        with pytest.raises(RuntimeError, match=f"gRPC cannot listen on 127.0.0.1:{settings.grpc_port}"):
            async with app.router.lifespan_context(app):
                pass


async def test_a_graceful_stop_finishes_calls_in_flight_and_refuses_new_ones(served):
    served.model().delay.clear()
    in_flight = asyncio.ensure_future(served.stub.ModelInfer(infer_request()))
    await async_wait_until(lambda: served.taken() == 1, 5, "the call never reached the model")
    stopping = asyncio.ensure_future(served.app.state.grpc_server.stop())
    await asyncio.sleep(0.1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ServerLive(pb.ServerLiveRequest(), timeout=2)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not stopping.done()
    served.model().delay.set()
    answer = await in_flight
    assert np.frombuffer(answer.raw_output_contents[0], "<f4").argmax() == 7
    await asyncio.wait_for(stopping, 5)


async def test_health_watchers_hear_not_serving_and_their_streams_end_at_shutdown(served):
    watch = health_pb2_grpc.HealthStub(served.channel).Watch(health_pb2.HealthCheckRequest())
    assert (await watch.read()).status == SERVING
    started = time.monotonic()
    stopping = asyncio.ensure_future(served.app.state.grpc_server.stop())
    assert (await watch.read()).status == NOT_SERVING
    assert await watch.read() is grpc.aio.EOF and await watch.code() is grpc.StatusCode.OK
    await asyncio.wait_for(stopping, 5)
    assert time.monotonic() - started < served.app.state.settings.graceful_shutdown_s / 2  # not held to the grace


async def test_sigterm_starts_the_grpc_stop_and_still_reaches_the_handler_in_place(settings, loader):
    heard: list[int] = []

    def uvicorns(sig, frame):  # stands in for the handler uvicorn installs
        heard.append(sig)

    previous = signal.signal(signal.SIGTERM, uvicorns)
    try:
        add_version(settings.models_dir, "lenet5", 1)
        async for served in serve(settings, loader):
            os.kill(os.getpid(), signal.SIGTERM)
            await async_wait_until(lambda: served.app.state.grpc_server._stopping is not None, 5, "no stop began")  # noqa: B023 (called in this iteration)
            await asyncio.wait_for(served.app.state.grpc_server._stopping, 5)
            assert heard == [signal.SIGTERM]
            with pytest.raises(grpc.aio.AioRpcError):
                await served.stub.ServerLive(pb.ServerLiveRequest(), timeout=2)
        assert signal.getsignal(signal.SIGTERM) is uvicorns
        os.kill(os.getpid(), signal.SIGTERM)  # the handler in place before the app is back
        assert heard == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_grpc_listens_on_8001_by_default_and_never_on_the_http_port():
    from pydantic import ValidationError

    from app.config import Settings, settings_error_lines

    assert Settings.model_fields["grpc_port"].default == 8001  # as Triton; tests/conftest.py sets 0 for the suite
    with pytest.raises(ValidationError) as caught:
        Settings(port=9000, grpc_port=9000)
    assert settings_error_lines(caught.value) == [
        (
            "error: LENET_GRPC_PORT=9000: Value error, LENET_PORT is 9000 too; give gRPC another port, or 0 to turn it off"
            " (gRPC port of the V2 inference service (0: no gRPC))"
        )
    ]
