"""The V2 (Open Inference Protocol) HTTP surface on the real app with a fake model: errors in the protocol's
form on every /v2 route, the model repository extension, the binary-data extension's precedence, compressed
request and response bodies, and /v2/."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import httpx
import jsonschema
import numpy as np
import pytest
from pydantic import SecretStr

from app.main import create_app
from tests.app.conftest import add_version, assert_v2_error, metric
from tests.conftest import async_wait_until

TOKEN = "v2-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INDEX_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "state", "reason"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "reason": {"type": "string"},
            "state": {"enum": ["UNKNOWN", "READY", "UNAVAILABLE", "LOADING", "UNLOADING"]},
        },
    },
}
MAX_BODY = 16 * 1024


def tensor(n: int = 1, name: str = "image", shape: list[int] | None = None, **extra: object) -> dict[str, object]:
    shape = shape or [n, 784]
    return {"name": name, "shape": shape, "datatype": "FP32", "data": [0.0] * int(np.prod(shape)), **extra}


def infer_body(n: int = 1, **extra: object) -> dict[str, object]:
    return {"inputs": [tensor(n)], **extra}


def assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


@pytest.fixture
def admin_settings(settings):
    return settings.model_copy(update={"admin_token": SecretStr(TOKEN), "max_body_bytes": MAX_BODY})


@pytest.fixture
async def client(admin_settings, loader):
    add_version(admin_settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(admin_settings, loader)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        http.app = app  # type: ignore[attr-defined]
        yield http


# ----- 1. errors as the protocol writes them -----
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
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        assert_v2_error(await http.post("/v2/repository/models/lenet5/load", headers=AUTH), 403, "disabled")


async def test_a_deadline_and_a_model_not_ready_are_the_protocols_error_object(admin_settings, loader):
    add_version(admin_settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(admin_settings.model_copy(update={"request_timeout_s": 0.2}), loader)
    async with app.router.lifespan_context(app):
        (model,) = loader.loaded.values()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
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


# ----- 2. the model repository extension -----
async def index(http: httpx.AsyncClient, **request: object) -> list[dict[str, object]]:
    response = (
        await http.post("/v2/repository/index", json=request) if request else await http.post("/v2/repository/index")
    )  # tritonclient sends an empty body
    assert response.status_code == 200, response.text
    jsonschema.validate(response.json(), INDEX_SCHEMA)
    return response.json()


async def test_server_metadata_advertises_the_repository_extension(client):
    assert "model_repository" in (await client.get("/v2")).json()["extensions"]


async def test_the_index_lists_every_version_with_its_state_and_reason(admin_settings, loader):
    add_version(admin_settings.models_dir, "lenet5", 1, digit=1)
    add_version(admin_settings.models_dir, "lenet5", 2, digit=2)
    add_version(admin_settings.models_dir, "lenet5", 3, broken=True)
    add_version(admin_settings.models_dir, "other", 1, digit=4)
    (admin_settings.models_dir / "empty").mkdir()
    app = create_app(admin_settings, loader)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        entries = {(e["name"], e.get("version")): e for e in await index(http)}
        assert entries[("lenet5", "2")]["state"] == "READY" and entries[("lenet5", "2")]["reason"] == ""
        assert entries[("lenet5", "1")]["state"] == "UNAVAILABLE"
        assert "not loaded" in entries[("lenet5", "1")]["reason"]
        assert entries[("lenet5", "3")]["state"] == "UNAVAILABLE"
        assert "smoke prediction failed" in entries[("lenet5", "3")]["reason"]
        assert entries[("other", "1")]["state"] == "READY"
        assert entries[("empty", None)] == {"name": "empty", "state": "UNAVAILABLE", "reason": "no versions"}

        # A pinned request loads version 1: it is ready too from then on.
        assert (await http.post("/v2/models/lenet5/versions/1/infer", json=infer_body())).status_code == 200
        ready = await index(http, ready=True)
        assert sorted((e["name"], e["version"]) for e in ready) == [
            ("lenet5", "1"),
            ("lenet5", "2"),
            ("other", "1"),
        ]
        assert all(e["state"] == "READY" for e in ready)


async def test_unload_stops_serving_until_load_and_the_poller_leaves_it_alone(client, admin_settings):
    http = client
    assert_v2_error(
        await http.post("/v2/repository/models/lenet5/unload", headers={"Authorization": "Bearer no"}),
        401,
        "admin token",
    )
    response = await http.post(
        "/v2/repository/models/lenet5/unload", headers=AUTH, json={"parameters": {"unload_dependents": False}}
    )  # what tritonclient sends
    assert response.status_code == 200, response.text
    assert [(e["version"], e["state"], e["reason"]) for e in await index(http)] == [("1", "UNAVAILABLE", "unloaded")]
    assert (await http.get("/readyz")).status_code == 503  # the default model: this replica is out of rotation
    assert 'lenet_model_version{model="lenet5"}' not in (await http.get("/metrics")).text
    assert_v2_error(await http.post("/v2/models/lenet5/versions/1/infer", json=infer_body()), 503, "unloaded")
    assert_envelope(await http.post("/predict", json={"instances": [[0] * 784]}), 503, "model_not_ready")

    # A new version on disk does not bring it back: only a load does.
    add_version(admin_settings.models_dir, "lenet5", 2, digit=2)
    await asyncio.sleep(5 * admin_settings.poll_interval_s)
    assert (await http.get("/v2/models/lenet5/ready")).status_code == 503
    response = await http.post("/v2/repository/models/lenet5/load", headers=AUTH, content=b"")
    assert response.status_code == 200, response.text
    answer = await http.post("/v2/models/lenet5/infer", json=infer_body())
    assert answer.status_code == 200 and answer.json()["model_version"] == "2"  # its highest version, at once
    assert (await http.get("/readyz")).status_code == 200
    assert metric((await http.get("/metrics")).text, 'lenet_model_version{model="lenet5"}') == 2
    assert (await http.post("/v2/repository/models/lenet5/load", headers=AUTH)).status_code == 200  # idempotent


async def test_load_of_a_model_whose_every_version_is_broken_says_why(client, admin_settings):
    add_version(admin_settings.models_dir, "broken", 1, broken=True)
    assert_v2_error(
        await client.post("/v2/repository/models/broken/load", headers=AUTH), 404, "smoke prediction failed"
    )
    assert_v2_error(await client.post("/v2/repository/models/..%2Fjobs/load", headers=AUTH), 404)
    assert_v2_error(
        await client.post(
            "/v2/repository/models/lenet5/unload", headers=AUTH, json={"parameters": {"unload_dependents": "yes"}}
        ),
        400,
        "unload_dependents",
    )


# ----- 3. the binary-data extension, requested outputs, compression, /v2/ -----
def split(response: httpx.Response) -> tuple[dict[str, object], bytes]:
    length = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:length]), response.content[length:]


@pytest.mark.parametrize(
    "request_parameter,output_parameter,binary",
    [
        pytest.param(True, False, False, id="output-false-overrides-request-true"),
        pytest.param(False, True, True, id="output-true-overrides-request-false"),
        pytest.param(True, None, True, id="request-true-applies-to-a-named-output"),
        pytest.param(None, None, False, id="json-by-default"),
    ],
)
async def test_an_outputs_binary_data_overrides_the_request_level_binary_data_output(
    client, request_parameter, output_parameter, binary
):
    body: dict[str, object] = infer_body(2)
    if request_parameter is not None:
        body["parameters"] = {"binary_data_output": request_parameter}
    output: dict[str, object] = {"name": "probabilities"}
    if output_parameter is not None:
        output["parameters"] = {"binary_data": output_parameter}
    body["outputs"] = [output]
    response = await client.post("/v2/models/lenet5/infer", json=body)
    assert response.status_code == 200, response.text
    if binary:
        header, raw = split(response)
        assert header["outputs"][0]["parameters"] == {"binary_data_size": 80} and len(raw) == 80
        assert np.frombuffer(raw, "<f4").reshape(2, 10).argmax(axis=1).tolist() == [7, 7]
    else:
        assert "inference-header-content-length" not in response.headers
        assert len(response.json()["outputs"][0]["data"]) == 20


@pytest.mark.parametrize(
    "outputs,contains",
    [
        pytest.param([{"name": "probabilities"}, {"name": "probabilities"}], "more than once", id="duplicate"),
        pytest.param([{"name": "logits"}], "unknown output 'logits'", id="unknown"),
        pytest.param([{"parameters": {"binary_data": True}}], '"name"', id="no-name"),
        pytest.param([{"name": "probabilities", "parameters": {"binary_data": "yes"}}], "boolean", id="not-a-bool"),
        pytest.param(
            [{"name": "probabilities", "parameters": {"classification": 3}}], "classification", id="classification"
        ),
    ],
)
async def test_requested_outputs_are_validated(client, outputs, contains):
    assert_v2_error(await client.post("/v2/models/lenet5/infer", json=infer_body(outputs=outputs)), 400, contains)


@pytest.mark.parametrize(
    "encoding,compress",
    [
        pytest.param("gzip", gzip.compress, id="gzip"),
        pytest.param("deflate", zlib.compress, id="deflate"),
        pytest.param("GZip", gzip.compress, id="case-insensitive"),
    ],
)
async def test_compressed_request_bodies_are_decompressed(client, encoding, compress):
    raw = np.zeros((3, 784), "<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {"name": "image", "shape": [3, 784], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
            ]
        }
    ).encode()
    response = await client.post(
        "/v2/models/lenet5/infer",
        content=compress(header + raw),
        headers={
            "Content-Encoding": encoding,
            "Inference-Header-Content-Length": str(len(header)),
            "content-type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [3, 10]
    predict = await client.post(
        "/predict",
        content=compress(json.dumps({"instances": [[0] * 784]}).encode()),
        headers={"Content-Encoding": encoding, "content-type": "application/json"},
    )
    assert predict.status_code == 200, predict.text


@pytest.mark.parametrize(
    "content,contains",
    [
        pytest.param(gzip.compress(json.dumps(infer_body()).encode())[:-12], "truncated", id="truncated"),
        pytest.param(gzip.compress(json.dumps(infer_body()).encode()) + b"junk", "after the end", id="trailing-junk"),
        pytest.param(b"\x1f\x8b" + b"\0" * 30, "not valid gzip", id="corrupt"),
    ],
)
async def test_a_damaged_compressed_body_is_a_400(client, content, contains):
    response = await client.post("/v2/models/lenet5/infer", content=content, headers={"Content-Encoding": "gzip"})
    assert_v2_error(response, 400, contains)


async def test_an_unknown_content_encoding_names_the_accepted_ones(client):
    response = await client.post("/v2/models/lenet5/infer", content=b"x", headers={"Content-Encoding": "zstd"})
    assert_v2_error(response, 415, "gzip")
    assert response.headers["accept-encoding"] == "gzip, deflate"


async def test_responses_are_gzip_compressed_when_asked_and_the_binary_header_length_counts_plain_bytes(
    settings, loader
):
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)  # the default 20 MiB body limit: 64 images as JSON
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        body = infer_body(64, outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}])
        for accept, encoded in (("gzip", True), ("identity", False)):
            async with http.stream(
                "POST", "/v2/models/lenet5/infer", json=body, headers={"Accept-Encoding": accept}
            ) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            assert response.status_code == 200
            assert (response.headers.get("content-encoding") == "gzip") is encoded
            plain = gzip.decompress(raw) if encoded else raw
            length = int(response.headers["inference-header-content-length"])
            header = json.loads(plain[:length])
            assert header["outputs"][0]["parameters"]["binary_data_size"] == 64 * 10 * 4 == len(plain) - length
        answer = await http.post("/v2/models/lenet5/infer", json=infer_body(64), headers={"Accept-Encoding": "gzip"})
        assert answer.headers["content-encoding"] == "gzip" and len(answer.json()["outputs"][0]["data"]) == 640


async def test_v2_with_a_trailing_slash_answers_like_v2(client):
    response = await client.get("/v2/", follow_redirects=False)
    assert response.status_code == 200 and response.json() == (await client.get("/v2")).json()


async def test_model_metadata_lists_the_accepted_datatypes_and_shapes(client):
    meta = (await client.get("/v2/models/lenet5")).json()
    (image,) = meta["inputs"]
    assert image["name"] == "image" and image["datatype"] == "FP32" and image["shape"] == [-1, 28, 28, 1]
    assert image["parameters"]["accepted_datatypes"].split(",") == ["FP32", "FP64", "UINT8", "FP16"]
    assert image["parameters"]["accepted_shapes"] == "[-1,28,28,1],[-1,28,28],[-1,784]"
    # Every parameter value is a string, number or boolean, as the protocol's $parameter allows.
    assert all(isinstance(v, (str, int, float, bool)) for v in image["parameters"].values())
    for datatype, dtype in (("UINT8", "u1"), ("FP16", "<f2"), ("FP64", "<f8")):
        raw = np.zeros((1, 784), dtype).tobytes()
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "image",
                        "shape": [1, 784],
                        "datatype": datatype,
                        "parameters": {"binary_data_size": len(raw)},
                    }
                ]
            }
        ).encode()
        response = await client.post(
            "/v2/models/lenet5/infer",
            content=header + raw,
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        assert response.status_code == 200, (datatype, response.text)
