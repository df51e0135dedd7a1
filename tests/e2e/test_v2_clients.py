"""The V2 REST endpoints as their public clients see them, against the real server: tritonclient.http (sync and
aio) and kserve's InferenceRESTClient. Errors reach the caller as the server's message; the model repository
extension, compressed bodies both ways and the binary-data extension work through the clients' own calls."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import httpx
import jsonschema
import numpy as np
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from tests.app.conftest import V2_ERROR_SCHEMA
from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT
from tests.e2e.conftest import start_server, stop_server

TOKEN = "e2e-v2-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
with np.load(FIXTURE_MNIST) as _data:
    DIGITS, LABELS = _data["x_test"][:8], _data["y_test"][:8]

# (what the call does wrong, its HTTP status, the message the server writes and the caller must see)
NO_MODEL = ("404", "no model 'nope'")
NO_MODEL_TO_INFER = ("404", "no model 'nope'; available: lenet5")
BAD_NAME = ("400", "unknown input 'x'; this model takes 'image'")
BAD_SHAPE = ("400", "input shape [1, 27, 27, 1] is not one of [N,28,28,1], [N,28,28] or [N,784]")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2-clients")
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", root / "models" / "lenet5" / "1")
    server = start_server(root / "models", root / "server.log", LENET_ADMIN_TOKEN=TOKEN)
    yield server
    stop_server(server)
    assert TOKEN not in server.log()


@pytest.fixture
def client(server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def triton_input(
    name: str = "image", shape: tuple[int, ...] = (8, 28, 28, 1), binary: bool = True, module=triton
) -> object:
    tensor = module.InferInput(name, list(shape), "FP32")
    data = DIGITS.astype(np.float32) / 255.0
    tensor.set_data_from_numpy(data.reshape(-1)[: int(np.prod(shape))].reshape(shape), binary_data=binary)
    return tensor


def assert_error(exc: InferenceServerException, expected: tuple[str, str]) -> None:
    status, message = expected
    assert exc.status() == status and exc.message() == message
    assert str(exc) == f"[{status}] {message}"  # used to raise TypeError: the message was a dict


# ----- errors, as tritonclient (sync and aio) and kserve's client show them -----
def test_tritonclient_shows_the_servers_message(client):
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata("nope")
    assert_error(caught.value, NO_MODEL)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("lenet5", [triton_input("x")])
    assert_error(caught.value, BAD_NAME)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("lenet5", [triton_input(shape=(1, 27, 27, 1))])
    assert_error(caught.value, BAD_SHAPE)
    with pytest.raises(InferenceServerException) as caught:  # the JSON path too, and a compressed request
        client.infer(
            "lenet5",
            [triton_input("x", binary=False)],
            request_compression_algorithm="gzip",
            response_compression_algorithm="gzip",
        )
    assert_error(caught.value, BAD_NAME)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("nope", [triton_input()])
    assert_error(caught.value, NO_MODEL_TO_INFER)
    assert client.is_model_ready("nope") is False


async def test_tritonclient_aio_shows_the_servers_message(server):
    async with triton_aio.InferenceServerClient(server.url.removeprefix("http://")) as client:
        with pytest.raises(InferenceServerException) as caught:
            await client.get_model_metadata("nope")
        assert_error(caught.value, NO_MODEL)
        with pytest.raises(InferenceServerException) as caught:
            await client.infer("lenet5", [triton_input("x", module=triton_aio)])
        assert_error(caught.value, BAD_NAME)
        with pytest.raises(InferenceServerException) as caught:
            await client.infer(
                "lenet5",
                [triton_input(shape=(1, 27, 27, 1), module=triton_aio)],
                request_compression_algorithm="deflate",
            )
        assert_error(caught.value, BAD_SHAPE)
        images = triton_aio.InferInput("image", [64, 28, 28, 1], "UINT8")  # an answer over 1 KiB: gzipped
        images.set_data_from_numpy(np.tile(DIGITS, (8, 1, 1))[..., None])
        for binary in (True, False):
            result = await client.infer(
                "lenet5",
                [images],
                request_compression_algorithm="gzip",
                response_compression_algorithm="gzip",
                outputs=[triton_aio.InferRequestedOutput("probabilities", binary_data=binary)],
            )
            assert result.as_numpy("probabilities").argmax(axis=1).tolist() == np.tile(LABELS, 8).tolist()


def test_kserve_rest_client_shows_the_servers_message(server):
    """kserve's client runs in its own process (see tests/e2e/kserve_client_check.py for why)."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "e2e" / "kserve_client_check.py"), server.url, str(FIXTURE_MNIST)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["bad_input"].startswith(f"{BAD_NAME[1]}, '400 Bad Request' for url ")
    assert seen["no_model"].startswith(f"{NO_MODEL_TO_INFER[1]}, '404 Not Found' for url ")
    assert seen["nope_ready"] is False and seen["lenet5_ready"] is True
    assert seen["digits"] == seen["labels"] == LABELS.tolist()


@pytest.mark.parametrize(
    "method,path,body",
    [
        pytest.param("GET", "/v2/models/nope", None, id="unknown-model"),
        pytest.param("GET", "/v2/not-a-route", None, id="unknown-route"),
        pytest.param("DELETE", "/v2", None, id="wrong-method"),
        pytest.param("GET", "/v2/models/lenet5/versions/x/ready", None, id="validation"),
        pytest.param("POST", "/v2/models/lenet5/infer", b"[]", id="bad-request"),
        pytest.param("POST", "/v2/models/lenet5/infer", b"0" * (21 << 20), id="too-large"),
        pytest.param("POST", "/v2/repository/models/lenet5/unload", b"", id="no-admin-token"),
    ],
)
def test_every_v2_error_body_is_the_protocols_error_object(server, method, path, body):
    response = httpx.request(method, server.url + path, content=body, timeout=30)
    assert 400 <= response.status_code < 500
    jsonschema.validate(response.json(), V2_ERROR_SCHEMA)


# ----- the model repository extension through tritonclient -----
def test_tritonclient_repository_index_load_and_unload(client):
    index = client.get_model_repository_index()
    assert {"name": "lenet5", "version": "1", "state": "READY", "reason": ""} in index

    with pytest.raises(InferenceServerException) as caught:
        client.unload_model("lenet5")  # no token
    assert caught.value.status() == "401" and "admin token" in caught.value.message()

    client.unload_model("lenet5", headers=AUTH)
    try:
        assert client.is_model_ready("lenet5") is False
        assert [(e["state"], e["reason"]) for e in client.get_model_repository_index() if e["name"] == "lenet5"] == [
            ("UNAVAILABLE", "unloaded")
        ]
        with pytest.raises(InferenceServerException) as caught:
            client.infer("lenet5", [triton_input()])
        assert caught.value.status() == "503" and "unloaded" in caught.value.message()
        with pytest.raises(InferenceServerException) as caught:
            client.load_model("lenet5", headers=AUTH, config='{"max_batch_size": 8}')
        assert caught.value.status() == "400" and "config" in caught.value.message()
    finally:
        client.load_model("lenet5", headers=AUTH)
    assert client.is_model_ready("lenet5") is True
    assert client.is_server_ready() is True


# ----- the binary-data extension and compression through tritonclient -----
@pytest.mark.parametrize("request_compression", [None, "gzip", "deflate"])
@pytest.mark.parametrize("response_compression", [None, "gzip"])
@pytest.mark.parametrize("binary_output", [None, True, False])
def test_tritonclient_infer_with_compression_and_binary_data(
    client, request_compression, response_compression, binary_output
):
    outputs = (
        None if binary_output is None else [triton.InferRequestedOutput("probabilities", binary_data=binary_output)]
    )
    images = triton.InferInput("image", [64, 28, 28, 1], "UINT8")  # answers over 1 KiB: compressed when asked
    images.set_data_from_numpy(np.tile(DIGITS, (8, 1, 1))[..., None], binary_data=request_compression != "deflate")
    result = client.infer(
        "lenet5",
        [images],
        outputs=outputs,
        request_compression_algorithm=request_compression,
        response_compression_algorithm=response_compression,
    )
    assert result.as_numpy("probabilities").argmax(axis=1).tolist() == np.tile(LABELS, 8).tolist()
    (output,) = result.get_response()["outputs"]
    # No outputs named: tritonclient asks binary_data_output for all; a named output's binary_data decides.
    assert ("data" not in output) is (binary_output is not False)


def test_model_metadata_through_the_clients(client):
    meta = client.get_model_metadata("lenet5")
    (image,) = meta["inputs"]
    assert image["datatype"] == "FP32" and image["parameters"]["accepted_datatypes"] == "FP32,FP64,UINT8,FP16"
    assert {"binary_tensor_data", "model_repository"} <= set(client.get_server_metadata()["extensions"])
    for datatype, scale in (("UINT8", 1), ("FP16", 255.0), ("FP64", 255.0)):
        tensor = triton.InferInput("image", [8, 28, 28, 1], datatype)
        tensor.set_data_from_numpy((DIGITS[..., None] / scale).astype(triton_to_np_dtype(datatype)))
        result = client.infer("lenet5", [tensor])
        assert result.as_numpy("probabilities").argmax(axis=1).tolist() == LABELS.tolist(), datatype


def test_a_gzip_answer_keeps_the_plain_header_length(server):
    raw = np.tile(DIGITS, (8, 1, 1)).tobytes()
    header = (
        b'{"inputs":[{"name":"image","shape":[64,784],"datatype":"UINT8","parameters":{"binary_data_size":%d}}],'
        b'"parameters":{"binary_data_output":true}}' % len(raw)
    )
    with httpx.stream(
        "POST",
        f"{server.url}/v2/models/lenet5/infer",
        content=header + raw,
        timeout=30,
        headers={"Inference-Header-Content-Length": str(len(header)), "Accept-Encoding": "gzip"},
    ) as answer:
        sent = b"".join(answer.iter_raw())
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    plain = gzip.decompress(sent)
    length = int(answer.headers["inference-header-content-length"])
    assert json.loads(plain[:length])["outputs"][0]["parameters"]["binary_data_size"] == len(plain) - length == 2560
    assert np.frombuffer(plain[length:], "<f4").reshape(64, 10).argmax(axis=1).tolist() == np.tile(LABELS, 8).tolist()
