"""The V2 binary-data extension's precedence, requested outputs, compressed request and response bodies, and /v2/."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import numpy as np
import pytest

from app.main import create_app
from tests.app.conftest import add_version, assert_v2_error, served
from tests.app.v2.conftest import infer_body


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
    async with served(app) as http:
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
