"""V2 errors as the protocol writes them, on every /v2 route: the status, `{"error": message}`, and the server
still up."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from app.main import create_app
from tests.app.conftest import add_version, assert_v2_error, served
from tests.app.v2.conftest import AUTH, MAX_BODY, assert_envelope, infer_body, tensor
from tests.conftest import async_wait_until

GZIP_BOMB = gzip.compress(b"\0" * (4 * MAX_BODY))  # a few hundred bytes that inflate past the body limit
V2_ERRORS = [
    pytest.param("GET", "/v2/models/nope", {}, 404, "no model 'nope'", id="unknown-model-metadata"),
    pytest.param("GET", "/v2/models/nope/ready", {}, 404, "nope", id="unknown-model-ready"),
    pytest.param("GET", "/v2/models/lenet5/versions/9", {}, 404, "version 9", id="unknown-version"),
    pytest.param("POST", "/v2/models/nope/infer", {"json": infer_body()}, 404, "nope", id="infer-unknown-model"),
    pytest.param("POST", "/v2/models/..%2Fjobs/infer", {"json": infer_body()}, 404, "", id="infer-path-name"),
    pytest.param("GET", "/v2/nowhere", {}, 404, "Not Found", id="unknown-route"),
    pytest.param("GET", "/v2/models/lenet5/infer", {}, 405, "Method Not Allowed", id="wrong-method"),
    pytest.param("GET", "/v2/models/lenet5/versions/one", {}, 422, "version", id="version-not-a-number"),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"json": {"inputs": [tensor(name="x")]}},
        400,
        "unknown input 'x'",
        id="unknown-input",
    ),
    # a malformed input tensor is named for what is wrong with it (a new user's review: "expected exactly one input
    # tensor 'image', got 1" for an input that was not an object, "unknown input None" for one without a name)
    pytest.param(
        "POST", "/v2/models/lenet5/infer", {"json": {"inputs": [1]}}, 400, "inputs[0] must be an object", id="input-1"
    ),
    pytest.param(
        "POST", "/v2/models/lenet5/infer", {"json": {"inputs": [None]}}, 400, "must be an object", id="input-null"
    ),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"json": {"inputs": [tensor(), tensor()]}},
        400,
        "expected exactly one input tensor 'image', got 2",
        id="two-inputs",
    ),
    pytest.param("POST", "/v2/models/lenet5/infer", {"json": {"inputs": [{}]}}, 400, 'needs a "name"', id="no-name"),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"json": {"inputs": [{"name": "image", "shape": [1, 784]}]}},
        400,
        'needs a "datatype"',
        id="no-datatype",
    ),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"json": {"inputs": [tensor(shape=[1, 27, 27, 1])]}},
        400,
        "[1, 27, 27, 1]",
        id="bad-shape",
    ),
    pytest.param("POST", "/v2/models/lenet5/infer", {"content": b"{not json"}, 400, "not valid JSON", id="not-json"),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"json": infer_body(outputs=[{"name": "logits"}])},
        400,
        "unknown output 'logits'",
        id="unknown-output",
    ),
    pytest.param("POST", "/v2/models/lenet5/infer", {"content": b"x" * (MAX_BODY + 1)}, 413, "limit", id="too-large"),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"content": GZIP_BOMB, "headers": {"Content-Encoding": "gzip"}},
        413,
        "decompressed",
        id="gzip-bomb",
    ),
    pytest.param(
        "POST",
        "/v2/models/lenet5/infer",
        {"content": b"x", "headers": {"Content-Encoding": "br"}},
        415,
        "'br'",
        id="unknown-content-encoding",
    ),
    pytest.param("POST", "/v2/repository/index", {"json": {"ready": "yes"}}, 400, "ready", id="index-bad-ready"),
    pytest.param("POST", "/v2/repository/models/lenet5/unload", {}, 401, "admin token", id="unload-no-token"),
    pytest.param("POST", "/v2/repository/models/nope/load", {"headers": AUTH}, 404, "nope", id="load-unknown"),
    pytest.param(
        "POST",
        "/v2/repository/models/lenet5/load",
        {"headers": AUTH, "json": {"parameters": {"config": "{}"}}},
        400,
        "config",
        id="load-with-config",
    ),
]


@pytest.mark.parametrize("method,path,kwargs,status,contains", V2_ERRORS)
async def test_every_v2_error_is_the_protocols_error_object(client, method, path, kwargs, status, contains):
    assert_v2_error(await client.request(method, path, **kwargs), status, contains)


async def test_the_service_routes_keep_their_envelope(client):
    assert_envelope(await client.post("/predict", json={"instances": []}), 400, "bad_request")
    assert_envelope(await client.get("/nowhere"), 404, "not_found")
    assert_envelope(await client.get("/v2nowhere"), 404, "not_found")  # not under /v2/
    assert_envelope(await client.get("/models/nope/versions/1"), 404, "model_not_found")
    assert_envelope(
        await client.post("/predict", content=b"x", headers={"Content-Encoding": "br"}), 415, "unsupported_media_type"
    )


async def test_admin_disabled_is_the_protocols_error_object_too(settings, loader):
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)  # no admin token: admin endpoints are off
    async with served(app) as http:
        assert_v2_error(await http.post("/v2/repository/models/lenet5/load", headers=AUTH), 403, "disabled")


async def test_a_deadline_and_a_model_not_ready_are_the_protocols_error_object(admin_settings, loader):
    add_version(admin_settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(admin_settings.model_copy(update={"request_timeout_s": 0.2}), loader)
    async with served(app) as http:
        (model,) = loader.loaded.values()
        model.delay.clear()  # the first request holds the model; the second waits past its deadline
        first = asyncio.create_task(http.post("/v2/models/lenet5/infer", json=infer_body()))
        registry = app.state.metrics.registry
        await async_wait_until(
            lambda: registry.get_sample_value("lenet_queue_wait_seconds_count", {"model": "lenet5"}),
            2,
            "the first request never reached the model",
        )
        second = asyncio.create_task(http.post("/v2/models/lenet5/infer", json=infer_body()))
        await asyncio.sleep(0.4)
        model.delay.set()
        assert (await first).status_code == 200
        assert_v2_error(await second, 504, "deadline")

        assert (await http.post("/v2/repository/models/lenet5/unload", headers=AUTH)).status_code == 200
        assert_v2_error(await http.post("/v2/models/lenet5/infer", json=infer_body()), 503, "unloaded")
        assert_v2_error(await http.get("/v2/models/lenet5/ready"), 503, "unloaded")
        assert_v2_error(await http.get("/v2/health/ready"), 503)
