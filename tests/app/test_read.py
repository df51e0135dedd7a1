"""POST /read on the real app with a fake model (it answers 7 for every candidate, at 0.99)."""

from __future__ import annotations

import asyncio
import base64
import threading

import httpx
import numpy as np
import orjson
import pytest

from app.imaging.segment import FINER_WIDE_PIECE, WIDE_PIECE, segment_number
from app.main import create_app
from app.routes import read as read_route
from tests.app.conftest import add_version, fake_settings, metric, served, serving_sevens
from tests.app.imaging_helpers import png
from tests.app.number_helpers import ink_of, page, whole_frame
from tests.conftest import async_wait_until

NUMBER = png(page([(ink_of(i, 80), 30 + 110 * n, 40) for n, i in enumerate([0, 1, 2])], (160, 380)))
BLANK = png(np.full((120, 300), 250, np.uint8))


@pytest.fixture
async def client(tmp_path, loader):
    async with serving_sevens(fake_settings(tmp_path, max_read_digits=4), loader) as http:
        yield http


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


async def test_read_a_number_digit_by_digit(client):
    response = await client.post("/read", files={"image": ("number.png", NUMBER, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "lenet5", "version": 1}
    (reading,) = body["readings"]
    assert reading["text"] == "777" and reading["confidence"] == pytest.approx(0.99)
    assert "reason" not in reading
    boxes = [d["box"] for d in reading["digits"]]
    assert [d["digit"] for d in reading["digits"]] == [7, 7, 7]
    assert [x for x, *_ in boxes] == sorted(x for x, *_ in boxes)  # left to right
    assert all(25 <= x <= 300 and 30 <= y <= 60 and 20 <= w <= 90 and 70 <= h <= 90 for x, y, w, h in boxes), boxes


async def test_all_candidates_of_a_request_go_to_the_model_together(client, loader):
    (model,) = loader.loaded.values()
    model.sizes.clear()
    files = [("image", ("a.png", NUMBER, "image/png")), ("image", ("b.png", NUMBER, "image/png"))]
    response = await client.post("/read", files=files)
    assert [r["text"] for r in response.json()["readings"]] == ["777", "777"]
    candidates = 2 * len(segment_number(NUMBER).candidates)
    assert sum(model.sizes) == candidates
    assert len(model.sizes) == -(-candidates // 8)  # one request split only by the batch size (8 here)


async def test_json_b64_and_an_empty_image_in_order(client):
    instances = [{"b64": base64.b64encode(BLANK).decode()}, {"b64": base64.b64encode(NUMBER).decode()}]
    response = await client.post("/read", json={"instances": instances})
    assert response.status_code == 200, response.text
    empty, number = response.json()["readings"]
    assert empty == {"text": "", "confidence": None, "digits": [], "reason": "no_ink"}
    assert number["text"] == "777"


async def test_only_empty_images_still_name_the_model(client, loader):
    (model,) = loader.loaded.values()
    model.sizes.clear()
    response = await client.post("/read", files={"image": ("blank.png", BLANK, "image/png")})
    assert response.json()["model"] == {"name": "lenet5", "version": 1} and model.sizes == []
    response = await client.post("/read?model=nope", files={"image": ("blank.png", BLANK, "image/png")})
    assert_error(response, 404, "model_not_found")


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        pytest.param({"json": {"instances": [[[0] * 28] * 28]}}, 400, "bad_request", id="array-instance"),
        pytest.param({"json": {"instances": []}}, 400, "bad_request", id="no-instances"),
        pytest.param({"files": {"image": ("x.png", b"not an image", "image/png")}}, 400, "bad_image", id="not-image"),
        pytest.param({"files": {"other": ("x.png", NUMBER, "image/png")}}, 400, "bad_request", id="wrong-field"),
        pytest.param(
            {"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type", id="media-type"
        ),
    ],
)
async def test_bad_requests_use_the_error_envelope(client, request_kwargs, status, code):
    assert_error(await client.post("/read", **request_kwargs), status, code)


async def test_too_many_digits_refused(client):
    many = png(page([(ink_of(i, 50), 20 + 70 * n, 30) for n, i in enumerate(range(6))], (120, 460)))
    response = await client.post("/read", files={"image": ("many.png", many, "image/png")})
    assert_error(response, 400, "too_many_digits")
    assert "image[0] (many.png)" in response.json()["error"]["message"]


async def test_openapi_documents_read(client):
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/read"]["post"]
    assert "200" in operation["responses"] and "400" in operation["responses"]
    assert set(operation["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"ReadResponse", "NumberReading", "ReadDigit"} <= set(schema["components"]["schemas"])
    example = operation["requestBody"]["content"]["application/json"]["example"]
    response = await client.post("/read", json=example)
    assert response.json()["readings"][0]["text"] == "7777"  # the documented example holds four digits


async def test_the_reading_model_reads_by_default_while_it_is_served(tmp_path, loader):
    settings = fake_settings(tmp_path)
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)
    async with served(app) as http:
        upload = {"image": ("number.png", NUMBER, "image/png")}
        # No reading model in the repository: the default model reads.
        body = (await http.post("/read", files=upload)).json()
        assert body["model"] == {"name": "lenet5", "version": 1} and body["readings"][0]["text"] == "777"
        add_version(settings.models_dir, settings.read_model, 1, digit=4)
        repository = app.state.repository
        await async_wait_until(lambda: repository.serving(settings.read_model), 10, "the reading model was not loaded")
        body = (await http.post("/read", files=upload)).json()
        assert body["model"] == {"name": "lenet5-read", "version": 1} and body["readings"][0]["text"] == "444"
        # A request that names a model gets it; /predict keeps the default model.
        body = (await http.post("/read?model=lenet5", files=upload)).json()
        assert body["model"]["name"] == "lenet5" and body["readings"][0]["text"] == "777"
        body = (await http.post("/predict", files=upload)).json()
        assert body["model"]["name"] == "lenet5"


async def test_a_twelve_digit_number_is_read_whole(tmp_path, loader):
    settings = fake_settings(tmp_path)
    add_version(settings.models_dir, "lenet5", 1, digit=3)
    twelve = png(page([(ink_of(i, 60), 20 + 75 * n, 40) for n, i in enumerate(range(12))], (140, 940)))
    app = create_app(settings, loader)
    async with served(app) as http:
        response = await http.post("/read", files={"image": ("twelve.png", twelve, "image/png")})
    (reading,) = response.json()["readings"]
    assert reading["text"] == "3" * 12
    xs = [d["box"][0] for d in reading["digits"]]
    assert xs == sorted(xs) and all(abs(x - (20 + 75 * n)) <= 12 for n, x in enumerate(xs)), xs


async def test_a_request_may_offer_the_model_only_so_many_candidates(tmp_path, loader):
    settings = fake_settings(tmp_path, max_queue_images=2 * len(segment_number(NUMBER).candidates) + 2)
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)
    async with served(app) as http:
        one = [("image", ("n.png", NUMBER, "image/png"))]
        assert (await http.post("/read", files=one)).status_code == 200
        response = await http.post("/read", files=one * 3)  # more than half the queue
        assert_error(response, 400, "too_many_digits")
        message = response.json()["error"]["message"]
        # The request's share of the queue is what ran out, not the image's own bound (a new user's finding: the
        # message said the image held "more ink than 32 digits' worth", of an image read alone without a fault).
        assert message.startswith("image[") and "more ink than" not in message, message
        assert f"more than the {settings.max_queue_images // 2} candidate digits one request may" in message
        assert "send fewer images per request" in message
        assert (await http.post("/read", files=one)).status_code == 200  # and the next request is read
        # An image with more marks than a reading may have, once the budget is partly spent: its own fault is named
        many = png(page([(ink_of(n % 6, 30), 10 + 40 * n, 20) for n in range(40)], (80, 1640)))
        response = await http.post("/read", files=[*one, ("image", ("many.png", many, "image/png"))])
        assert_error(response, 400, "too_many_digits")
        message = response.json()["error"]["message"]
        assert message.startswith("image[1] (many.png): ") and "or more digits" in message, message


@pytest.mark.parametrize("route, example", [("/predict", "digit.png"), ("/read", "number.png")])
async def test_a_wrong_field_names_the_route_it_was_sent_to_in_its_example(client, route, example):
    response = await client.post(route, files={"other": ("x.png", NUMBER, "image/png")})
    assert_error(response, 400, "bad_request")
    assert f"e.g. curl -F image=@{example} ...{route}" in response.json()["error"]["message"]


@pytest.mark.parametrize("route", ["/predict", "/read"])
async def test_a_body_without_a_content_type_that_is_not_json_is_415_saying_how_to_send_an_image(client, route):
    # curl --data-binary @number.png -H 'Content-Type:' .../read: it had been read as JSON, and was answered
    # 400 "body is not valid JSON: str is not valid UTF-8"
    response = await client.post(route, content=NUMBER)
    assert "content-type" not in response.request.headers
    assert_error(response, 415, "unsupported_media_type")
    message = response.json()["error"]["message"]
    assert "no Content-Type" in message and "multipart/form-data" in message and "application/json" in message


@pytest.mark.parametrize("route, json_form", [("/predict", "'instances'"), ("/read", "'instances' of {\"b64\"")])
async def test_another_media_type_is_415_naming_what_the_route_reads(client, route, json_form):
    response = await client.post(route, content=NUMBER, headers={"content-type": "image/png"})
    assert_error(response, 415, "unsupported_media_type")
    message = response.json()["error"]["message"]
    assert message.startswith("content type 'image/png' is not accepted; send multipart/form-data with field 'image'")
    assert f"application/json with {json_form}" in message


@pytest.mark.parametrize("route", ["/predict", "/read"])
async def test_json_without_a_content_type_is_still_read(client, route):
    body = orjson.dumps({"instances": [{"b64": base64.b64encode(NUMBER).decode()}]})
    response = await client.post(route, content=body)
    assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text


async def test_a_closer_looks_second_look_cuts_the_part_of_the_upload_it_read(tmp_path, loader, monkeypatch):
    # A number written small in a whole phone frame is read again in its region (app.imaging.closer); where the line
    # reader then counts more digits than that reading found, the second look cuts the same region finer, not the whole
    # upload (whose work frame holds the digits a third as tall).
    settings = fake_settings(tmp_path)
    add_version(settings.models_dir, "lenet5", 1, digit=7, line="7777")
    frame, _ = whole_frame([37, 11], seed=0, height=36, size=(1764, 2352))
    looked: list[tuple[float, tuple | None]] = []
    segment = read_route._segment

    async def recorded(where, data, limits, left, whole, wide_piece=WIDE_PIECE, region=None):
        looked.append((wide_piece, region))
        return await segment(where, data, limits, left, whole, wide_piece, region)

    monkeypatch.setattr(read_route, "_segment", recorded)
    app = create_app(settings, loader)
    async with served(app) as http:
        response = await http.post("/read", files={"image": ("frame.jpg", frame, "image/jpeg")})
    assert response.status_code == 200, response.text
    regions = [region for piece, region in looked if region is not None and piece == WIDE_PIECE]
    assert len(regions) == 1, looked
    assert (FINER_WIDE_PIECE, regions[0]) in looked, looked


@pytest.fixture
def held_segmentation(monkeypatch):
    """/read's image work held in its thread until the test sets the event; `started` counts the images taken up."""
    release, started = threading.Event(), []
    real = read_route.segment_number

    def held(*args, **kwargs):
        started.append(1)
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(read_route, "segment_number", held)
    yield release, started
    release.set()


async def _metric_is(http: httpx.AsyncClient, name: str, value: float) -> bool:
    return metric((await http.get("/metrics")).text, name) == value


async def test_past_its_reading_slots_and_queue_a_read_is_turned_away_at_once(tmp_path, loader, held_segmentation):
    # An outside check: 20 /read requests a second against the ~8 this machine reads were all queued (up to the 256
    # in flight), answered after up to 27 s with a 10 s timeout, and none turned away. Reading is CPU work: past
    # LENET_READ_SLOTS reading at once and LENET_MAX_READ_QUEUE waiting, a 503 at once, as /predict's full queue.
    release, started = held_segmentation
    files = {"image": ("number.png", NUMBER, "image/png")}
    async with serving_sevens(fake_settings(tmp_path, read_slots=1, max_read_queue=1), loader) as http:
        first = asyncio.create_task(http.post("/read", files=files))
        await async_wait_until(lambda: started, 5, "the first reading never started")
        second = asyncio.create_task(http.post("/read", files=files))
        while not await _metric_is(http, "lenet_reads_waiting", 1):
            await asyncio.sleep(0.005)
        third = await http.post("/read", files=files)
        assert_error(third, 503, "overloaded")
        assert third.headers["retry-after"] == "1"
        assert "LENET_MAX_READ_QUEUE" in third.json()["error"]["message"]
        assert not second.done() and len(started) == 1  # the second waits for the slot; it does not read beside
        release.set()
        assert (await first).status_code == 200 and (await second).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert metric(metrics, "lenet_reads_shed_total") == 1 and metric(metrics, "lenet_reads_waiting") == 0


async def test_a_read_past_its_deadline_while_others_read_gets_504(tmp_path, loader, held_segmentation):
    # The request timeout counts from the request's arrival: waiting for a reading slot, and then for the model, past
    # it is a 504, not another full timeout for each wait.
    release, started = held_segmentation
    files = {"image": ("number.png", NUMBER, "image/png")}
    settings = fake_settings(tmp_path, read_slots=1, max_read_queue=4, request_timeout_s=0.3)
    async with serving_sevens(settings, loader) as http:
        first = asyncio.create_task(http.post("/read", files=files))
        await async_wait_until(lambda: started, 5, "the first reading never started")
        second = await http.post("/read", files=files)
        assert_error(second, 504, "deadline_exceeded")
        assert len(started) == 1  # it never read
        release.set()  # the first read its image past its deadline: the model's queue turns it away
        assert_error(await first, 504, "deadline_exceeded")
        assert (await http.post("/read", files=files)).status_code == 200  # and the slot is free again
