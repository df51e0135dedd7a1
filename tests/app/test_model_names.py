"""A model name from a request never reaches outside the model repository: every route that takes a
name answers 404 for traversal, encoded or not, and no answer names a server path."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.app.conftest import add_version, png_bytes, serving_sevens

# A SavedModel folder outside the repository, as a rejected training candidate is (jobs/<id>/candidate/1).
OUTSIDE = "../jobs/abc/candidate"

HOSTILE = [
    pytest.param(OUTSIDE, id="dotdot"),
    pytest.param("..", id="parent"),
    pytest.param(".", id="dot"),
    pytest.param("%2e%2e", id="encoded-dotdot"),
    pytest.param("..%2Fjobs%2Fabc%2Fcandidate", id="encoded-slash"),
    pytest.param("..\\jobs\\abc\\candidate", id="backslash"),
    pytest.param("/etc", id="absolute"),
    pytest.param("lenet5\x00", id="nul"),
    pytest.param("a" * 300, id="overlong"),
    pytest.param(".hidden", id="hidden"),
]


@pytest.fixture
async def client(settings, loader):
    # digit 3 marks the outside model: an answer of 3 means it was loaded
    add_version(settings.models_dir.parent / "jobs" / "abc", "candidate", 1, digit=3)
    async with serving_sevens(settings, loader) as http:
        http.settings = settings  # type: ignore[attr-defined]
        yield http


def assert_no_server_path(response: httpx.Response, settings) -> None:
    for path in (settings.models_dir, settings.models_dir.parent, settings.jobs_dir):
        assert str(path) not in response.text, response.text
        assert str(path.resolve()) not in response.text, response.text


@pytest.mark.parametrize("name", HOSTILE)
async def test_predict_query_name_cannot_leave_the_repository(client, name):
    png = png_bytes(np.zeros((28, 28), np.uint8))
    for version in (None, 1):
        params = {"model": name} | ({"version": version} if version else {})
        answer = await client.post("/predict", params=params, files={"image": ("d.png", png, "image/png")})
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "model_not_found"
        assert_no_server_path(answer, client.settings)


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(
    "route",
    [
        pytest.param("GET /v2/models/{}", id="v2-metadata"),
        pytest.param("GET /v2/models/{}/versions/1", id="v2-version-metadata"),
        pytest.param("GET /v2/models/{}/ready", id="v2-ready"),
        pytest.param("GET /v2/models/{}/versions/1/ready", id="v2-version-ready"),
        pytest.param("POST /v2/models/{}/infer", id="v2-infer"),
        pytest.param("POST /v2/models/{}/versions/1/infer", id="v2-version-infer"),
        pytest.param("GET /models/{}/versions/1", id="models-version"),
        pytest.param("GET /models/{}/versions/1/report/confusion_matrix.png", id="models-figure"),
    ],
)
async def test_path_name_cannot_leave_the_repository(client, route, name):
    method, template = route.split()
    body = {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}]}
    # the name goes into the URL raw, so %2e and %2F reach the server as typed; a bare `.` or `..` segment as
    # %2E (clients, httpx included, fold those segments away before sending; the server decodes them back)
    segment = name.replace(".", "%2E") if name in (".", "..") else name
    url = template.format(segment.replace("\x00", "%00").replace("\\", "%5C"))
    answer = await client.request(method, url, json=body if method == "POST" else None)
    assert answer.status_code == 404, (url, answer.text)
    assert_no_server_path(answer, client.settings)


async def test_train_model_name_is_the_same_validated_name(client):
    for name in ("../escape", "..", "a/b", "a" * 65, ".x"):
        answer = await client.post("/train", json={"model": name}, headers={"Authorization": "Bearer x"})
        assert answer.status_code in (401, 403, 422), answer.text  # refused before anything else


def test_the_pattern_is_one_and_conservative():
    from training.layout import InvalidModelName, check_model_name

    for good in ("lenet5", "lenet5-plus", "my_model-2", "A" * 64):
        assert check_model_name(good) == good
    for bad in ("", ".", "..", "a/b", "a\\b", "a.b", "-x", "a\x00", "A" * 65, "é"):
        with pytest.raises(InvalidModelName):
            check_model_name(bad)


async def test_a_model_folder_linking_outside_is_not_served(client, settings):
    (settings.models_dir / "linked").symlink_to(settings.models_dir.parent / "jobs" / "abc" / "candidate")
    png = png_bytes(np.zeros((28, 28), np.uint8))
    answer = await client.post(
        "/predict", params={"model": "linked", "version": 1}, files={"image": ("d.png", png, "image/png")}
    )
    assert answer.status_code == 404, answer.text
    listed = (await client.get("/models")).json()
    assert "linked" not in [m["name"] for m in listed["models"]]
