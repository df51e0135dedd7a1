"""Request ids, metrics, the in-flight bound and error statuses of gRPC calls, through the app's own server."""

from __future__ import annotations

import asyncio
import logging
import re

import grpc
import pytest
from tritonclient.grpc import service_pb2 as pb

from app.errors import ModelNotReady
from tests.app.conftest import add_version, metric
from tests.conftest import async_wait_until
from tests.grpc_v2.conftest import infer_request, serve


def trailing(error_or_call) -> dict[str, str]:
    return dict(error_or_call.trailing_metadata() or ())


async def test_the_callers_request_id_comes_back_in_the_trailers(served):
    call = served.stub.ModelInfer(infer_request(), metadata=(("x-request-id", "caller-42"),))
    await call
    assert dict(await call.trailing_metadata()) == {"x-request-id": "caller-42"}


async def test_a_request_id_is_made_when_none_is_sent_and_errors_have_one_too(served):
    ids = []
    for _ in range(2):
        call = served.stub.ServerLive(pb.ServerLiveRequest())
        await call
        ids.append(dict(await call.trailing_metadata())["x-request-id"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelInfer(infer_request(name="nope"))
    ids.append(trailing(caught.value)["x-request-id"])
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", i) for i in ids)


async def test_a_long_request_id_is_cut_as_http_cuts_it(served):
    call = served.stub.ServerLive(pb.ServerLiveRequest(), metadata=(("x-request-id", "r" * 300),))
    await call
    assert dict(await call.trailing_metadata())["x-request-id"] == "r" * 128


async def test_calls_are_counted_by_method_and_code(served):
    await served.stub.ModelInfer(infer_request())
    with pytest.raises(grpc.aio.AioRpcError):
        await served.stub.ModelInfer(infer_request(name="nope"))
    text = (await served.http.get("/metrics")).text
    infer = "/inference.GRPCInferenceService/ModelInfer"
    assert metric(text, f'lenet_grpc_requests_total{{code="OK",method="{infer}"}}') == 1
    assert metric(text, f'lenet_grpc_requests_total{{code="NOT_FOUND",method="{infer}"}}') == 1
    assert metric(text, f'lenet_grpc_request_seconds_count{{code="OK",method="{infer}"}}') == 1
    assert metric(text, 'lenet_images_predicted_total{model="lenet5"}') == 1  # the batcher's own metrics too


async def test_a_full_queue_answers_unavailable_with_a_retry_hint(settings, loader):
    add_version(settings.models_dir, "lenet5", 1)
    async for served in serve(settings.model_copy(update={"max_queue_images": 4}), loader):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ModelInfer(infer_request(5))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "queue full" in caught.value.details() and "retry after 1 s" in caught.value.details()
        assert {"retry-after": "1", "grpc-retry-pushback-ms": "1000"}.items() <= trailing(caught.value).items()
        assert metric((await served.http.get("/metrics")).text, 'lenet_rejected_total{model="lenet5"}') == 1


async def test_a_model_not_ready_answers_unavailable(served, monkeypatch):
    async def not_ready(name, version):
        raise ModelNotReady("model 'lenet5' is not loaded yet")

    monkeypatch.setattr(served.app.state.repository, "resolve", not_ready)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelInfer(infer_request())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE and trailing(caught.value)["retry-after"] == "1"


async def test_a_call_queued_past_its_deadline_answers_deadline_exceeded(settings, loader):
    add_version(settings.models_dir, "lenet5", 1)
    async for served in serve(settings.model_copy(update={"request_timeout_s": 0.2, "max_batch_size": 1}), loader):
        served.model().delay.clear()  # the first call holds the model; the second waits in the queue
        first = asyncio.ensure_future(served.stub.ModelInfer(infer_request()))
        await async_wait_until(lambda: served.taken() == 1, 5, "the first call never reached the model")  # noqa: B023 (called in this iteration)
        second = asyncio.ensure_future(served.stub.ModelInfer(infer_request()))
        await asyncio.sleep(0.4)  # past the second call's 0.2 s in the queue
        served.model().delay.set()
        await first
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await second
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_past_the_inflight_bound_calls_are_shed_but_health_still_answers(settings, loader):
    add_version(settings.models_dir, "lenet5", 1)
    async for served in serve(settings.model_copy(update={"max_inflight_requests": 1}), loader):
        served.model().delay.clear()
        held = asyncio.ensure_future(served.stub.ModelInfer(infer_request()))
        await async_wait_until(lambda: served.taken() == 1, 5, "the first call never reached the model")  # noqa: B023 (called in this iteration)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ModelMetadata(pb.ModelMetadataRequest(name="lenet5"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE and "too many requests" in caught.value.details()
        assert (await served.stub.ServerReady(pb.ServerReadyRequest())).ready
        served.model().delay.set()
        assert (await held).model_version == "1"
        assert (await served.stub.ModelMetadata(pb.ModelMetadataRequest(name="lenet5"))).name == "lenet5"
        assert metric((await served.http.get("/metrics")).text, "lenet_shed_requests_total") == 1


async def test_an_unexpected_failure_is_internal_and_logged(served, monkeypatch, caplog):
    async def broken(name, version, images):
        raise RuntimeError("the model blew up")

    monkeypatch.setattr(served.app.state.repository, "predict", broken)
    with caplog.at_level(logging.WARNING, logger="lenet"), pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelInfer(infer_request(), metadata=(("x-request-id", "boom-1"),))
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error; see the server log"  # no internals to the caller
    assert any(getattr(r, "request_id", None) == "boom-1" for r in caplog.records)
