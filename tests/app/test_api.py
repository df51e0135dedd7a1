"""The HTTP API on the real app with a fake model (httpx over ASGI, lifespan run for real)."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import jsonschema
import numpy as np
import pytest
from PIL import Image

from app.imaging import NO_DIGIT_REASONS
from app.main import create_app
from tests.app.conftest import add_version, assert_v2_error, metric, png_bytes, served
from tests.conftest import FIXTURE_MNIST


@pytest.fixture(scope="module")
def digit_png() -> bytes:
    with np.load(FIXTURE_MNIST) as data:
        return png_bytes(data["x_test"][0])


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body


async def test_predict_png(client, digit_png):
    response = await client.post("/predict", files={"image": ("digit.png", digit_png, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "lenet5", "version": 1}
    (prediction,) = body["predictions"]
    assert prediction["digit"] == 7 and prediction["confidence"] == pytest.approx(0.99)
    assert len(prediction["probabilities"]) == 10
    assert response.headers["x-request-id"]


async def test_a_file_whose_name_holds_a_quote_is_read_as_browsers_and_curl_send_it(client, digit_png):
    # An outside check: browsers (the service's own page too), curl and httpx send a '"' in a filename as %22 (the HTML
    # standard's encoding), and the upload was refused as an ambiguous part. The filename names the file in messages
    # only; a field's name, which says what the part is, still may not hold one.
    files = [("image", ('my "seven".png', digit_png, "image/png")), ("image", ("two\nlines.png", b"x", "image/png"))]
    response = await client.post("/predict", files=files)
    assert response.status_code == 400, response.text  # the second file is no image: its name, decoded, in the message
    assert "image[1] (two\nlines.png)" in response.json()["error"]["message"], response.text
    response = await client.post("/predict", files=files[:1])
    assert response.status_code == 200 and response.json()["predictions"][0]["digit"] == 7, response.text


async def test_several_files_answer_in_order_and_can_return_the_input(client, digit_png):
    files = [("image", (f"{i}.png", digit_png, "image/png")) for i in range(3)]
    response = await client.post("/predict?return_image=true", files=files)
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    seen = Image.open(io.BytesIO(base64.b64decode(predictions[0]["image"])))
    assert seen.size == (28, 28) and seen.mode == "L"


async def test_json_instances_arrays_and_b64(client, digit_png):
    with np.load(FIXTURE_MNIST) as data:
        digit = data["x_test"][0]
    instances = [digit.tolist(), (digit / 255).reshape(-1).tolist(), {"b64": base64.b64encode(digit_png).decode()}]
    response = await client.post("/predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    assert [p["digit"] for p in response.json()["predictions"]] == [7, 7, 7]


async def test_concurrent_requests_are_batched(client, loader, digit_png):
    (model,) = loader.loaded.values()
    model.sizes.clear()
    responses = await asyncio.gather(
        *(client.post("/predict", files={"image": ("d.png", digit_png, "image/png")}) for _ in range(8))
    )
    assert all(r.status_code == 200 for r in responses)
    assert sum(model.sizes) == 8 and max(model.sizes) > 1  # the model saw batches, not 8 single calls


@pytest.mark.parametrize(
    "kwargs,status,code",
    [
        pytest.param({"files": {"image": ("x.png", b"not an image", "image/png")}}, 400, "bad_image", id="text-as-png"),
        pytest.param({"files": {"picture": ("x.png", b"x", "image/png")}}, 400, "bad_request", id="wrong-field"),
        pytest.param({"json": {"instances": [[[1] * 27] * 28]}}, 400, "bad_array", id="wrong-shape"),
        pytest.param({"json": {"instances": []}}, 400, "bad_request", id="empty-list"),
        pytest.param({"json": {"images": []}}, 400, "bad_request", id="missing-instances"),
        pytest.param(
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
            id="bad-json",
        ),
        pytest.param(
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
            id="invalid-utf8",
        ),
        pytest.param(
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
            id="text-plain",
        ),
        pytest.param({"json": {"instances": [{"b64": "!!!"}]}}, 400, "bad_image", id="bad-base64"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(client, kwargs, status, code):
    assert_error(await client.post("/predict", **kwargs), status, code)
    assert (await client.get("/readyz")).status_code == 200


async def test_too_many_instances_and_too_large_body(client, settings):
    too_many = {"instances": [[0] * 784] * (settings.max_instances + 1)}
    assert_error(await client.post("/predict", json=too_many), 400, "too_many_instances")
    huge = b"0" * (settings.max_body_bytes + 1)
    assert_error(
        await client.post("/predict", content=huge, headers={"content-type": "application/json"}), 413, "body_too_large"
    )


async def test_unknown_model_and_version(client):
    assert_error(await client.post("/predict?model=resnet", json={"instances": [[0] * 784]}), 404, "model_not_found")
    assert_error(await client.post("/predict?version=0", json={"instances": [[0] * 784]}), 422, "invalid_request")


async def test_health_models_and_metrics(client, digit_png):
    # no "models": {} (it read as "no model loaded"; readiness lists them: /readyz)
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready", "models": {"lenet5": 1}}
    models = (await client.get("/models")).json()["models"]
    assert models[0]["name"] == "lenet5" and models[0]["serving_version"] == 1
    assert models[0]["versions"][0]["test_accuracy"] == 0.99
    await client.post("/predict", files={"image": ("d.png", digit_png, "image/png")})
    text = (await client.get("/metrics")).text
    assert 'lenet_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'lenet_model_version{model="lenet5"} 1.0' in text
    assert "lenet_batch_size_bucket" in text and "lenet_images_predicted_total" in text


async def test_v2_json_and_binary(client):
    image = np.zeros((2, 28, 28, 1), np.float32)
    request = {
        "id": "r1",
        "inputs": [{"name": "image", "shape": [2, 28, 28, 1], "datatype": "FP32", "data": image.reshape(-1).tolist()}],
    }
    response = await client.post("/v2/models/lenet5/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "lenet5" and body["model_version"] == "1" and body["id"] == "r1"
    (output,) = body["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [2, 10] and len(output["data"]) == 20

    raw = image.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [2, 28, 28, 1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    response = await client.post(
        "/v2/models/lenet5/versions/1/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header)), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    split = int(response.headers["inference-header-content-length"])
    meta = json.loads(response.content[:split])
    probabilities = np.frombuffer(response.content[split:], "<f4").reshape(2, 10)
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 80
    assert probabilities.argmax(axis=1).tolist() == [7, 7]


async def test_v2_metadata_health_and_errors(client):
    assert (await client.get("/v2")).json()["name"] == "lenet-serve"
    assert (await client.get("/v2/health/live")).status_code == 200
    assert (await client.get("/v2/health/ready")).status_code == 200
    meta = (await client.get("/v2/models/lenet5")).json()
    assert meta["inputs"][0]["shape"] == [-1, 28, 28, 1] and meta["versions"] == ["1"]
    assert (await client.get("/v2/models/lenet5/ready")).status_code == 200
    assert_v2_error(await client.get("/v2/models/nope"), 404, "no model 'nope'")
    bad = {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32", "data": [0.0] * 10}]}
    assert_v2_error(await client.post("/v2/models/lenet5/infer", json=bad), 400, "784")
    nan = {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [float("nan")] * 784}]}
    # NaN is not JSON at all: refused by the parser.
    assert_v2_error(
        await client.post(
            "/v2/models/lenet5/infer", content=json.dumps(nan), headers={"content-type": "application/json"}
        ),
        400,
        "not valid JSON",
    )
    huge = {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [1e300] * 784}]}
    assert_v2_error(await client.post("/v2/models/lenet5/infer", json=huge), 400, "between 0 and 255")
    nan_binary = np.full(784, np.nan, "<f4").tobytes()
    header = json.dumps(
        {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "parameters": {"binary_data_size": 3136}}]}
    ).encode()
    assert_v2_error(
        await client.post(
            "/v2/models/lenet5/infer",
            content=header + nan_binary,
            headers={"Inference-Header-Content-Length": str(len(header))},
        ),
        400,
        "finite",
    )


async def test_version_metadata_and_figures(client, settings):
    report = settings.models_dir / "lenet5" / "1" / "report"
    report.mkdir()
    (report / "confusion_matrix.png").write_bytes(png_bytes(np.zeros((4, 4), np.uint8)))
    meta = (await client.get("/models/lenet5/versions/1")).json()
    assert meta["name"] == "lenet5" and meta["version"] == 1 and meta["parameters"] == 61706
    figure = await client.get("/models/lenet5/versions/1/report/confusion_matrix.png")
    assert figure.status_code == 200 and figure.headers["content-type"] == "image/png"
    assert_error(await client.get("/models/lenet5/versions/1/report/samples.png"), 404, "model_not_found")
    # a name that is not one of the report's figures is a 422, as the README's error table says
    assert_error(await client.get("/models/lenet5/versions/1/report/nope.png"), 422, "invalid_request")
    assert_error(await client.get("/models/lenet5/versions/9"), 404, "model_not_found")
    assert (await client.get("/models/lenet5/versions/1/report/..%2F..%2Fetc%2Fpasswd")).status_code in (404, 422)


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param({"parameters": [None]}, id="top-level-parameters-list"),
        pytest.param({"outputs": [{"name": "probabilities", "parameters": "yes"}]}, id="output-parameters-string"),
        pytest.param({"outputs": "probabilities"}, id="outputs-string"),
    ],
)
async def test_v2_malformed_parameters_are_400_not_500(client, request_body):
    # Found by schemathesis: these used to raise AttributeError (a 500).
    body = {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}], **request_body}
    assert_v2_error(await client.post("/v2/models/lenet5/infer", json=body), 400, "must be")


async def test_v2_version_ready_means_infer_would_succeed(settings, loader):
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    add_version(settings.models_dir, "lenet5", 2, digit=2)
    add_version(settings.models_dir, "lenet5", 3, broken=True)  # refused: version 2 serves
    app = create_app(settings, loader)
    body = {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}]}
    async with served(app) as http:
        for version, ready in ((1, True), (2, True), (3, False)):
            answer = await http.get(f"/v2/models/lenet5/versions/{version}/ready")
            infer = await http.post(f"/v2/models/lenet5/versions/{version}/infer", json=body)
            assert (answer.status_code == 200) is ready, (version, answer.text)
            assert (infer.status_code == 200) is ready, (version, infer.text)
        assert (await http.get("/v2/models/lenet5/versions/4/ready")).status_code == 404


# ----- images that hold no digit: "digit": null with the reason, the rest answered as usual -----
NO_DIGIT_ITEM = {"digit": None, "confidence": None, "probabilities": None}
BLANK_PNG = png_bytes(np.full((40, 60), 255, np.uint8))  # white paper, nothing on it


def assert_no_digit(item: dict, reason: str = "no_ink") -> None:
    assert {k: item[k] for k in NO_DIGIT_ITEM} == NO_DIGIT_ITEM and item["reason"] == reason, item


def assert_digit(item: dict, digit: int = 7) -> None:
    assert item["digit"] == digit and item["confidence"] == pytest.approx(0.99) and len(item["probabilities"]) == 10
    assert "reason" not in item  # answers with a digit are unchanged


async def test_a_blank_upload_is_answered_null_and_the_digit_beside_it_as_usual(client, loader, digit_png):
    (model,) = loader.loaded.values()
    files = [("image", ("blank.png", BLANK_PNG, "image/png")), ("image", ("digit.png", digit_png, "image/png"))]
    response = await client.post("/predict?return_image=true", files=files)
    assert response.status_code == 200, response.text
    blank, digit = response.json()["predictions"]
    assert_no_digit(blank)
    assert_digit(digit)
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(blank["image"]))))
    assert seen.shape == (28, 28) and not seen.any()  # the image of a no-digit answer: all zero
    assert model.sizes == [1]  # only the digit went to the model
    text = (await client.get("/metrics")).text
    assert metric(text, 'lenet_no_digit_total{reason="no_ink"}') == 1
    assert metric(text, 'lenet_images_predicted_total{model="lenet5"}') == 1


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param(["zeros", "digit"], id="lists-fast-path"),
        pytest.param(["flat-zeros", "digit", "zeros"], id="flat-and-nested-fast-path"),
        pytest.param(["zeros-28x28x1", "digit-b64"], id="beside-b64-per-instance-path"),
        pytest.param(["blank-b64", "digit"], id="blank-b64"),
        # An outside check's finding: 255 everywhere but one 254 was read as an 8; a speck of 3/255 on black too.
        pytest.param(["near-one-value", "digit", "faint-speck"], id="near-one-value-lists"),
        pytest.param(["near-one-value", "digit-b64"], id="near-one-value-per-instance-path"),
    ],
)
async def test_all_zero_arrays_and_blank_b64_instances_are_answered_null(client, loader, digit_png, kinds):
    (model,) = loader.loaded.values()
    with np.load(FIXTURE_MNIST) as data:
        digit = data["x_test"][0]
    instances = {
        "digit": digit.tolist(),
        "digit-b64": {"b64": base64.b64encode(digit_png).decode()},
        "zeros": [[0] * 28] * 28,
        "flat-zeros": [0.0] * 784,
        "zeros-28x28x1": [[[0]] * 28] * 28,
        "blank-b64": {"b64": base64.b64encode(BLANK_PNG).decode()},
        "near-one-value": [[255] * 28] * 27 + [[255] * 27 + [254]],
        "faint-speck": [[0] * 28] * 27 + [[0] * 27 + [3]],
    }
    response = await client.post("/predict", json={"instances": [instances[kind] for kind in kinds]})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(kinds)
    for kind, item in zip(kinds, predictions):
        if kind.startswith("digit"):
            assert_digit(item)
        else:
            assert_no_digit(item)
    assert model.sizes == [1]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"files": [("image", ("a.png", BLANK_PNG, "image/png"))] * 2}, id="blank-uploads"),
        pytest.param({"json": {"instances": [[0] * 784] * 3}}, id="zero-arrays"),
    ],
)
async def test_a_request_with_no_digit_at_all_names_the_model_without_calling_it(client, loader, kwargs):
    (model,) = loader.loaded.values()
    response = await client.post("/predict", **kwargs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "lenet5", "version": 1}
    assert body["predictions"] and all(item == {**NO_DIGIT_ITEM, "reason": "no_ink"} for item in body["predictions"])
    assert not model.entered.is_set() and model.sizes == []


async def test_a_blank_request_for_a_missing_model_or_version_is_still_404(client):
    blank = {"instances": [[0] * 784]}
    assert_error(await client.post("/predict?model=resnet", json=blank), 404, "model_not_found")
    assert_error(await client.post("/predict?version=9", json=blank), 404, "model_not_found")


async def test_a_pinned_version_is_named_for_a_blank_request(settings, loader):
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    add_version(settings.models_dir, "lenet5", 2, digit=2)
    app = create_app(settings, loader)
    async with served(app) as http:
        response = await http.post("/predict?version=1", json={"instances": [[0] * 784]})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == {"name": "lenet5", "version": 1}


async def test_the_openapi_schema_documents_the_null_answer_and_every_reason(client, digit_png):
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["DigitPrediction"]
    files = [("image", ("blank.png", BLANK_PNG, "image/png")), ("image", ("digit.png", digit_png, "image/png"))]
    for answer in ("/predict", "/predict?return_image=true"):
        for item in (await client.post(answer, files=files)).json()["predictions"]:
            jsonschema.Draft202012Validator(schema).validate(item)  # both kinds of answer match the schema
    assert not jsonschema.Draft202012Validator(schema).is_valid({**NO_DIGIT_ITEM, "reason": "not_a_code"})
    reason = schema["properties"]["reason"]
    (codes,) = [option["enum"] for option in reason["anyOf"] if "enum" in option]
    assert codes == list(NO_DIGIT_REASONS) and reason["x-reasons"] == NO_DIGIT_REASONS
    assert all(f"`{code}`: {meaning}" in reason["description"] for code, meaning in NO_DIGIT_REASONS.items())
    for field in ("digit", "confidence", "probabilities"):
        assert {"type": "null"} in schema["properties"][field]["anyOf"], field
    assert "reason" not in schema["required"]
