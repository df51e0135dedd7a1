"""gRPC against the real server process (uvicorn, the real SavedModel), through tritonclient.grpc as a V2
client would use it; the statuses its errors carry; the health service; SIGTERM stopping HTTP and gRPC."""

from __future__ import annotations

import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg
from tritonclient.utils import InferenceServerException

from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST
from tests.e2e.conftest import Server, free_port, start_server, stop_server

with np.load(FIXTURE_MNIST) as _data:
    DIGITS, LABELS = _data["x_test"][:8], _data["y_test"][:8]

MESSAGE_LIMIT = 1024 * 1024
QUEUE_LIMIT = 256  # images waiting at most: a bigger request is turned away at once


@dataclass
class GrpcServer:
    http: Server
    address: str


def start_grpc_server(root, **env: str) -> GrpcServer:
    models = root / "models"
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", models / "lenet5" / "1")
    env = {"LENET_GRPC_PORT": str(free_port()), **env}
    server = start_server(models, root / "server.log", **env)
    return GrpcServer(server, f"127.0.0.1:{env['LENET_GRPC_PORT']}")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[GrpcServer]:
    server = start_grpc_server(
        tmp_path_factory.mktemp("grpc"),
        LENET_GRPC_MAX_MESSAGE_BYTES=str(MESSAGE_LIMIT),
        LENET_MAX_QUEUE_IMAGES=str(QUEUE_LIMIT),
    )
    yield server
    stop_server(server.http)


@pytest.fixture
def client(served) -> Iterator[tg.InferenceServerClient]:
    with tg.InferenceServerClient(served.address) as client:
        yield client


def image_input(datatype: str, images: np.ndarray, shape: tuple[int, ...] | None = None) -> tg.InferInput:
    scale = 1 if datatype == "UINT8" else 255
    values = (images / scale).astype(
        {"UINT8": np.uint8, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}[datatype]
    )
    values = values.reshape(shape or (len(images), 28, 28, 1))
    tensor = tg.InferInput("image", list(values.shape), datatype)
    tensor.set_data_from_numpy(values)
    return tensor


def test_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("lenet5") and client.is_model_ready("lenet5", "1")
    assert not client.is_model_ready("no-such-model") and not client.is_model_ready("lenet5", "9")
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "lenet-serve" and server["version"]
    model = client.get_model_metadata("lenet5", as_json=True)
    assert model["name"] == "lenet5" and model["versions"] == ["1"]
    assert model["inputs"] == [{"name": "image", "datatype": "FP32", "shape": ["-1", "28", "28", "1"]}]
    assert model["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": ["-1", "10"]}]


@pytest.mark.parametrize("datatype", ["UINT8", "FP16", "FP32", "FP64"])
@pytest.mark.parametrize("shape", [pytest.param(None, id="nhwc"), pytest.param((8, 784), id="flat")])
def test_infer_with_raw_inputs_reads_the_digits(client, served, datatype, shape):
    result = client.infer(
        "lenet5",
        [image_input(datatype, DIGITS, shape)],
        request_id="req-1",
        outputs=[tg.InferRequestedOutput("probabilities")],
    )
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (8, 10) and probabilities.dtype == np.float32
    assert probabilities.argmax(axis=1).tolist() == LABELS.tolist()
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("lenet5", "1", "req-1")
    assert len(response.raw_output_contents) == 1  # raw in, raw out
    rest = httpx.post(
        f"{served.http.url}/v2/models/lenet5/infer",
        json={
            "inputs": [{"name": "image", "shape": [8, 28, 28, 1], "datatype": "UINT8", "data": DIGITS.ravel().tolist()}]
        },
    ).json()
    np.testing.assert_allclose(probabilities, np.reshape(rest["outputs"][0]["data"], (8, 10)), atol=1e-3)


@pytest.mark.parametrize(
    "datatype,field,scale",
    [
        pytest.param("UINT8", "uint_contents", 1, id="uint8"),
        pytest.param("FP32", "fp32_contents", 255, id="fp32"),
        pytest.param("FP64", "fp64_contents", 255, id="fp64"),
    ],
)
def test_infer_with_typed_contents_answers_typed(served, datatype, field, scale):
    request = pb.ModelInferRequest(model_name="lenet5")
    tensor = request.inputs.add(name="image", datatype=datatype, shape=[8, 784])
    getattr(tensor.contents, field).extend((DIGITS.ravel() / scale).tolist() if scale != 1 else DIGITS.ravel().tolist())
    with grpc.insecure_channel(served.address) as channel:
        response, call = pbg.GRPCInferenceServiceStub(channel).ModelInfer.with_call(
            request, metadata=(("x-request-id", "typed-1"),)
        )
    assert not response.raw_output_contents
    probabilities = np.array(response.outputs[0].contents.fp32_contents).reshape(8, 10)
    assert probabilities.argmax(axis=1).tolist() == LABELS.tolist()
    assert dict(call.trailing_metadata())["x-request-id"] == "typed-1"


def status_of(call) -> tuple[str, str]:
    try:
        call()
    except InferenceServerException as error:
        return error.status(), error.message()
    return "no error", ""


def test_errors_reach_tritonclient_as_status_codes(client):
    """What a tritonclient.grpc caller sees for each kind of error (the report lists these)."""
    good = [image_input("UINT8", DIGITS[:1])]
    seen = {
        "bad pixels": status_of(lambda: client.infer("lenet5", [image_input("FP32", np.full((1, 28, 28), -255.0))])),
        "bad shape": status_of(lambda: client.infer("lenet5", [_bad_shape()])),
        "bad datatype": status_of(lambda: client.infer("lenet5", [_int8_input()])),
        "unknown output": status_of(lambda: client.infer("lenet5", good, outputs=[tg.InferRequestedOutput("x")])),
        "unknown model": status_of(lambda: client.infer("no-such-model", good)),
        "unknown version": status_of(lambda: client.infer("lenet5", good, model_version="9")),
        "metadata of an unknown model": status_of(lambda: client.get_model_metadata("no-such-model")),
        "queue full": status_of(
            lambda: client.infer("lenet5", [image_input("UINT8", np.zeros((QUEUE_LIMIT + 1, 28, 28)))])
        ),
        "message too large": status_of(lambda: client.infer("lenet5", [image_input("FP32", np.zeros((400, 28, 28)))])),
        # a full queue's worth of images: inference takes milliseconds, past any rounding of a 1 us deadline (one
        # image answered within it once in CI: "no error")
        "client deadline": status_of(
            lambda: client.infer(
                "lenet5", [image_input("UINT8", np.resize(DIGITS, (QUEUE_LIMIT, 28, 28)))], client_timeout=0.000001
            )
        ),
        "Triton-only method": status_of(lambda: client.get_model_config("lenet5")),
    }
    print("\n".join(f"{what:30} {status:30} {message}" for what, (status, message) in seen.items()))
    codes = {what: status for what, (status, _) in seen.items()}
    assert codes == {
        "bad pixels": "StatusCode.INVALID_ARGUMENT",
        "bad shape": "StatusCode.INVALID_ARGUMENT",
        "bad datatype": "StatusCode.INVALID_ARGUMENT",
        "unknown output": "StatusCode.INVALID_ARGUMENT",
        "unknown model": "StatusCode.NOT_FOUND",
        "unknown version": "StatusCode.NOT_FOUND",
        "metadata of an unknown model": "StatusCode.NOT_FOUND",
        "queue full": "StatusCode.UNAVAILABLE",
        "message too large": "StatusCode.RESOURCE_EXHAUSTED",
        "client deadline": "StatusCode.DEADLINE_EXCEEDED",
        "Triton-only method": "StatusCode.UNIMPLEMENTED",
    }
    assert "retry after 1 s" in seen["queue full"][1]
    assert "between 0 and 255" in seen["bad pixels"][1] and "no model 'no-such-model'" in seen["unknown model"][1]


def _bad_shape() -> tg.InferInput:
    tensor = tg.InferInput("image", [1, 28, 27], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 28, 27), np.uint8))
    return tensor


def _int8_input() -> tg.InferInput:
    tensor = tg.InferInput("image", [1, 784], "INT8")
    tensor.set_data_from_numpy(np.zeros((1, 784), np.int8))
    return tensor


def test_a_full_queue_says_when_to_retry_in_the_trailers(served):
    request = pb.ModelInferRequest(model_name="lenet5")
    request.inputs.add(name="image", datatype="UINT8", shape=[QUEUE_LIMIT + 1, 784])
    request.raw_input_contents.append(bytes((QUEUE_LIMIT + 1) * 784))
    with grpc.insecure_channel(served.address) as channel, pytest.raises(grpc.RpcError) as caught:
        pbg.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    trailers = dict(caught.value.trailing_metadata())
    assert trailers["retry-after"] == "1" and trailers["grpc-retry-pushback-ms"] == "1000" and trailers["x-request-id"]


def test_the_grpc_health_service_says_serving(served):
    with grpc.insecure_channel(served.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            assert (
                stub.Check(health_pb2.HealthCheckRequest(service=service)).status
                == health_pb2.HealthCheckResponse.SERVING
            )


def test_grpc_calls_are_in_the_metrics(client, served):
    client.infer("lenet5", [image_input("UINT8", DIGITS[:1])])
    assert (
        status_of(lambda: client.infer("no-such-model", [image_input("UINT8", DIGITS[:1])]))[0]
        == "StatusCode.NOT_FOUND"
    )
    text = httpx.get(f"{served.http.url}/metrics").text
    assert 'lenet_grpc_requests_total{code="OK",method="/inference.GRPCInferenceService/ModelInfer"}' in text
    assert 'lenet_grpc_requests_total{code="NOT_FOUND",method="/inference.GRPCInferenceService/ModelInfer"}' in text


def port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def test_sigterm_stops_http_and_grpc_together(tmp_path):
    """A health Watch stream stays open through the stop: it hears NOT_SERVING and ends, instead of holding
    the process for the whole LENET_GRACEFUL_SHUTDOWN_S."""
    server = start_grpc_server(tmp_path, LENET_GRACEFUL_SHUTDOWN_S="20")
    try:
        with grpc.insecure_channel(server.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            started = time.monotonic()
            server.http.process.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert list(watch) == []  # the stream ends
            assert server.http.process.wait(15) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10
        log = server.http.log()
        assert "gRPC stopped" in log and "Application shutdown complete" in log
        assert not port_open(server.address) and not port_open(server.http.url.removeprefix("http://"))
    finally:
        if server.http.process.poll() is None:
            stop_server(server.http)


def test_grpc_off_with_port_zero(tmp_path):
    server = start_grpc_server(tmp_path, LENET_GRPC_PORT="0")
    try:
        assert httpx.get(f"{server.http.url}/readyz").status_code == 200
        assert "gRPC" not in server.http.log()
    finally:
        stop_server(server.http)
    assert server.http.process.returncode in (0, -signal.SIGTERM)
