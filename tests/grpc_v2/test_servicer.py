"""The V2 methods over a fake model, through a real gRPC channel to the app's own server."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2 as pb

from tests.app.conftest import add_version
from tests.conftest import async_wait_until
from tests.grpc_v2.conftest import infer_request, serve


async def test_liveness_readiness_and_server_metadata(served):
    assert (await served.stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await served.stub.ServerReady(pb.ServerReadyRequest())).ready
    metadata = await served.stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (metadata.name, metadata.version, list(metadata.extensions)) == ("lenet-serve", served.app.version, [])


async def test_nothing_is_ready_before_the_default_model_is(settings, loader):
    async for served in serve(settings, loader):
        assert (await served.stub.ServerLive(pb.ServerLiveRequest())).live
        assert not (await served.stub.ServerReady(pb.ServerReadyRequest())).ready
        assert not (await served.stub.ModelReady(pb.ModelReadyRequest(name="lenet5"))).ready


@pytest.mark.parametrize(
    "name,version,ready",
    [
        pytest.param("lenet5", "", True, id="serving"),
        pytest.param("", "", True, id="default-model"),
        pytest.param("lenet5", "1", True, id="pinned"),
        pytest.param("lenet5", "2", False, id="unknown-version"),
        pytest.param("nope", "", False, id="unknown-model"),
        pytest.param("../etc", "", False, id="not-a-model-name"),
    ],
)
async def test_model_readiness_is_a_yes_or_no_as_triton_answers(served, name, version, ready):
    assert (await served.stub.ModelReady(pb.ModelReadyRequest(name=name, version=version))).ready is ready


async def test_a_version_too_long_to_be_a_number_is_an_invalid_argument_for_readiness(served):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelReady(pb.ModelReadyRequest(name="lenet5", version="9" * 4301))
    assert (
        caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "is not a version number" in caught.value.details()
    )


async def test_model_metadata_is_the_rest_answer_field_for_field(served):
    rest = (await served.http.get("/v2/models/lenet5")).json()
    answer = await served.stub.ModelMetadata(pb.ModelMetadataRequest(name="lenet5"))
    assert (answer.name, list(answer.versions), answer.platform) == (rest["name"], rest["versions"], rest["platform"])
    # Triton's TensorMetadata has no parameters: the REST answer's (accepted datatypes, shapes) stay REST's.
    for ours, theirs in ((answer.inputs, rest["inputs"]), (answer.outputs, rest["outputs"])):
        assert [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in ours] == [
            {key: tensor[key] for key in ("name", "datatype", "shape")} for tensor in theirs
        ]


@pytest.mark.parametrize(
    "request_,code",
    [
        pytest.param(pb.ModelMetadataRequest(name="nope"), grpc.StatusCode.NOT_FOUND, id="unknown-model"),
        pytest.param(
            pb.ModelMetadataRequest(name="lenet5", version="3"), grpc.StatusCode.NOT_FOUND, id="unknown-version"
        ),
        pytest.param(
            pb.ModelMetadataRequest(name="lenet5", version="one"), grpc.StatusCode.INVALID_ARGUMENT, id="not-a-version"
        ),
        pytest.param(  # past Python's 4300-digit limit of int(): was INTERNAL and a traceback in the log
            pb.ModelMetadataRequest(name="lenet5", version="9" * 5000),
            grpc.StatusCode.INVALID_ARGUMENT,
            id="a-5000-digit-version",
        ),
    ],
)
async def test_model_metadata_errors(served, request_, code):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelMetadata(request_)
    assert caught.value.code() is code


async def test_infer_answers_from_the_batcher_with_the_serving_version(served):
    request = infer_request(3)
    request.id = "abc"
    answer = await served.stub.ModelInfer(request)
    assert (answer.model_name, answer.model_version, answer.id) == ("lenet5", "1", "abc")
    probabilities = np.frombuffer(answer.raw_output_contents[0], "<f4").reshape(3, 10)
    assert probabilities.argmax(axis=1).tolist() == [7, 7, 7]
    assert served.model().sizes == [3]


async def test_infer_on_a_pinned_older_version(served, settings):
    add_version(settings.models_dir, "lenet5", 2, digit=3)
    request = infer_request(1)
    for _ in range(100):  # the repository polls every 0.05 s
        if (await served.stub.ModelInfer(request)).model_version == "2":
            break
    request.model_version = "1"
    answer = await served.stub.ModelInfer(request)
    assert answer.model_version == "1" and np.frombuffer(answer.raw_output_contents[0], "<f4").argmax() == 7


async def test_requests_sent_together_share_a_batch(served):
    served.model().delay.clear()  # hold the first call so the others queue behind it
    first = asyncio.ensure_future(served.stub.ModelInfer(infer_request(1)))
    await async_wait_until(lambda: served.taken() == 1, 5, "the first call never reached the model")
    rest = [asyncio.ensure_future(served.stub.ModelInfer(infer_request(1))) for _ in range(6)]
    batcher = served.app.state.repository.serving("lenet5").batcher
    await async_wait_until(lambda: batcher.queued_images == 6, 5, "the other calls never queued")
    served.model().delay.set()
    await asyncio.gather(first, *rest)
    assert served.model().sizes == [1, 6]


@pytest.mark.parametrize(
    "request_,code,words",
    [
        pytest.param(infer_request(1, name="nope"), grpc.StatusCode.NOT_FOUND, "no model 'nope'", id="unknown-model"),
        pytest.param(infer_request(1, version="9"), grpc.StatusCode.NOT_FOUND, "no version 9", id="unknown-version"),
        pytest.param(infer_request(2000), grpc.StatusCode.INVALID_ARGUMENT, "the limit is 1024", id="too-many"),
        pytest.param(
            infer_request(1, version="9" * 5000),
            grpc.StatusCode.INVALID_ARGUMENT,
            "is not a version number",
            id="a-5000-digit-version",
        ),
        pytest.param(
            pb.ModelInferRequest(model_name="lenet5"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "exactly one input",
            id="no-input",
        ),
    ],
)
async def test_infer_errors(served, request_, code, words):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelInfer(request_)
    assert caught.value.code() is code and words in caught.value.details()


async def test_triton_only_methods_are_unimplemented(served):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ModelConfig(pb.ModelConfigRequest(name="lenet5"))
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
