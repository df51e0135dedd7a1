"""Every kind of bad input against the real server: a clear 4xx each, and the server still ready.
Run with -s to print the table."""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT

DIGIT = (REPO_ROOT / "examples" / "digit.png").read_bytes()
with Image.open(io.BytesIO(DIGIT)) as _seven:
    SEVEN = np.asarray(_seven)
RESULTS: list[tuple[str, int, str]] = []


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 60_001 * 8))
        + chunk(b"IEND", b"")
    )


def gif() -> bytes:
    frames = [Image.fromarray(SEVEN), Image.fromarray(255 - SEVEN)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def files(data: bytes, name: str = "d.png", field: str = "image") -> dict:
    return {"files": {field: (name, data, "application/octet-stream")}}


def instances(value) -> dict:
    return {
        "content": json.dumps({"instances": value}, allow_nan=True).encode(),
        "headers": {"content-type": "application/json"},
    }


def nested(depth: int) -> bytes:
    return b'{"instances": [' + b"[" * depth + b"0" + b"]" * depth + b"]}"


# name, request kwargs, expected status, expected code (None: a 200 is right: the input is odd but valid)
CASES = [
    ("zero bytes", files(b""), 400, "bad_image"),
    ("truncated PNG", files(DIGIT[: len(DIGIT) // 2]), 400, "bad_image"),
    ("text named .png", files(b"hello, I am not a picture"), 400, "bad_image"),
    ("decompression bomb (60000x60000 header)", files(bomb()), 400, "image_too_large"),
    ("1x1 image", files(encoded(Image.new("L", (1, 1), 255), "PNG")), 200, None),
    ("16-bit PNG", files(encoded(Image.fromarray(SEVEN.astype(np.uint16) * 257), "PNG")), 200, None),
    ("animated GIF (first frame)", files(gif(), "d.gif"), 200, None),
    ("CMYK JPEG", files(encoded(Image.fromarray(255 - SEVEN).convert("CMYK"), "JPEG"), "d.jpg"), 200, None),
    ("TIFF (not accepted)", files(encoded(Image.fromarray(SEVEN), "TIFF"), "d.tif"), 400, "bad_image"),
    ("missing field", files(DIGIT, field="picture"), 400, "bad_request"),
    ("no body", {"headers": {"content-type": "multipart/form-data; boundary=x"}}, 400, "bad_request"),
    ("wrong shape 27x28", instances([[[0] * 28] * 27]), 400, "bad_array"),
    ("wrong shape 785 flat", instances([[0] * 785]), 400, "bad_array"),
    (
        "NaN",
        {"content": b'{"instances": [[NaN]]}', "headers": {"content-type": "application/json"}},
        400,
        "bad_request",
    ),
    (
        "Infinity",
        {"content": b'{"instances": [[Infinity]]}', "headers": {"content-type": "application/json"}},
        400,
        "bad_request",
    ),
    ("huge number 1e308", instances([[1e308] * 784]), 400, "bad_array"),
    (
        "huge integer 10^400",
        {"content": b'{"instances": [[' + b"1" + b"0" * 400 + b"]]}", "headers": {"content-type": "application/json"}},
        400,
        "bad_request",
    ),
    ("strings", instances([["7"] * 784]), 400, "bad_array"),
    ("booleans", instances([[True] * 784]), 400, "bad_array"),
    ("nulls", instances([[None] * 784]), 400, "bad_array"),
    (
        "deep nesting (100,000 levels)",
        {"content": nested(100_000), "headers": {"content-type": "application/json"}},
        400,
        "bad_request",
    ),
    (
        "deep nesting (50 levels)",
        {"content": nested(50), "headers": {"content-type": "application/json"}},
        400,
        "bad_array",
    ),
    ("too many instances (65)", instances([[0] * 784] * 65), 400, "too_many_instances"),
    (
        "too many files (65)",
        {"files": [("image", (f"{i}.png", DIGIT, "image/png")) for i in range(65)]},
        400,
        "too_many_instances",
    ),
    (
        "oversize body (Content-Length 2 MiB)",
        {"content": b"0" * (2 * 1024 * 1024), "headers": {"content-type": "application/json"}},
        413,
        "body_too_large",
    ),
    (
        "invalid UTF-8",
        {"content": b'{"instances": ["\xff\xfe"]}', "headers": {"content-type": "application/json"}},
        400,
        "bad_request",
    ),
    ("wrong content type", {"content": DIGIT, "headers": {"content-type": "image/png"}}, 415, "unsupported_media_type"),
    ("empty list", instances([]), 400, "bad_request"),
    ("not an object", instances(None) | {"content": b"[1, 2, 3]"}, 400, "bad_request"),
    ("bad base64", instances([{"b64": "@@@not base64@@@"}]), 400, "bad_image"),
    ("base64 of text", instances([{"b64": base64.b64encode(b"plain text").decode()}]), 400, "bad_image"),
    ("unknown model", {"params": {"model": "resnet"}, **instances([[0] * 784])}, 404, "model_not_found"),
    ("version 0", {"params": {"version": "0"}, **instances([[0] * 784])}, 422, "invalid_request"),
    (
        "model name outside the repository",
        {"params": {"model": "../jobs/x/candidate", "version": "1"}, **instances([[0] * 784])},
        404,
        "model_not_found",
    ),
    ("overlong model name", {"params": {"model": "m" * 5000}, **instances([[0] * 784])}, 404, "model_not_found"),
    (
        "broken pinned version",
        {"params": {"model": "broken", "version": "1"}, **instances([[0] * 784])},
        404,
        "model_not_found",
    ),
]


@pytest.fixture(scope="module", autouse=True)
def table_and_broken_model(server):
    """A model whose only version is broken (its refusal reason must not name a server path); after the
    module, the table of what every bad input got (pytest -s shows it)."""
    broken = server.models_dir / "broken" / "1"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    yield
    shutil.rmtree(broken.parent)  # the other modules share this server: leave its repository as it was
    print("\n| input | status | code |\n|---|---:|---|")
    for name, status, code in RESULTS:
        print(f"| {name} | {status} | {code} |")


def assert_no_server_path(response: httpx.Response, server) -> None:
    """No client ever sees where the server keeps its files."""
    places = {server.models_dir, server.models_dir.resolve(), server.models_dir.parent, REPO_ROOT, Path.home()}
    for place in places:
        assert str(place) not in response.text, response.text[:300]


@pytest.mark.parametrize("name,kwargs,status,code", [pytest.param(*case, id=case[0]) for case in CASES])
def test_bad_input(server, name, kwargs, status, code):
    response = httpx.post(f"{server.url}/predict", timeout=30, **kwargs)
    RESULTS.append((name, response.status_code, response.json().get("error", {}).get("code", "-")))
    assert response.status_code == status, response.text[:300]
    if code is None:
        assert len(response.json()["predictions"]) == 1
    else:
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    assert_no_server_path(response, server)
    assert response.headers["x-request-id"]
    assert httpx.get(f"{server.url}/readyz").status_code == 200


V2_HEADER = b'{"inputs":[{"name":"image","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}'
V2_CASES = [  # (name, request, status, what the protocol's {"error": "<message>"} says)
    (
        "V2 wrong input name",
        {"json": {"inputs": [{"name": "x", "shape": [1, 784], "datatype": "FP32", "data": [0] * 784}]}},
        400,
        "unknown input 'x'",
    ),
    (
        "V2 wrong datatype",
        {"json": {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "BYTES", "data": ["a"] * 784}]}},
        400,
        "datatype 'BYTES'",
    ),
    (
        "V2 shape/data mismatch",
        {"json": {"inputs": [{"name": "image", "shape": [2, 784], "datatype": "FP32", "data": [0] * 784}]}},
        400,
        "784 values",
    ),
    (
        "V2 binary size mismatch",
        {"content": V2_HEADER + b"\0" * 100, "headers": {"Inference-Header-Content-Length": str(len(V2_HEADER))}},
        400,
        "binary_data_size",
    ),
    (
        "V2 header length beyond body",
        {"content": b"{}", "headers": {"Inference-Header-Content-Length": "999"}},
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "V2 gzip bomb",
        {"content": gzip.compress(b"\0" * (8 << 20)), "headers": {"Content-Encoding": "gzip"}},
        413,
        "decompressed body exceeds",
    ),
]


@pytest.mark.parametrize("name,kwargs,status,says", [pytest.param(*case, id=case[0]) for case in V2_CASES])
def test_bad_v2_input(server, name, kwargs, status, says):
    response = httpx.post(f"{server.url}/v2/models/lenet5/infer", timeout=30, **kwargs)
    RESULTS.append((name, response.status_code, "-"))  # V2 errors carry a message, no code
    assert response.status_code == status, response.text[:300]
    assert set(response.json()) == {"error"} and says in response.json()["error"], response.text[:300]
    assert_no_server_path(response, server)
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def many_marks(count: int) -> bytes:
    """A strip of paper with `count` separate strokes on one line: more digits than /read reads."""
    gray = np.full((120, 40 * count + 40), 255, np.uint8)
    for n in range(count):
        gray[30:90, 40 + 40 * n : 48 + 40 * n] = 0
    return encoded(Image.fromarray(gray), "PNG")


NUMBER = (REPO_ROOT / "examples" / "number.png").read_bytes()
READ_CASES = [
    ("not an image", {"files": {"image": ("x.png", b"GIF89a not really", "image/png")}}, 400, "bad_image"),
    ("decompression bomb", {"files": {"image": ("bomb.png", bomb(), "image/png")}}, 400, "image_too_large"),
    (
        "more digits than LENET_MAX_READ_DIGITS",
        {"files": {"image": ("many.png", many_marks(40), "image/png")}},
        400,
        "too_many_digits",
    ),
    ("array instance", {"json": {"instances": [[0] * 784]}}, 400, "bad_request"),
    ("b64 that is not base64", {"json": {"instances": [{"b64": "%%%"}]}}, 400, "bad_image"),
    (
        "unknown model",
        {"params": {"model": "resnet"}, "files": {"image": ("n.png", NUMBER, "image/png")}},
        404,
        "model_not_found",
    ),
    (
        "model name outside the repository",
        {
            "params": {"model": "../jobs/x/candidate", "version": "1"},
            "files": {"image": ("n.png", NUMBER, "image/png")},
        },
        404,
        "model_not_found",
    ),
]


@pytest.mark.parametrize("name,kwargs,status,code", [pytest.param(*case, id=case[0]) for case in READ_CASES])
def test_bad_read_input(server, name, kwargs, status, code):
    response = httpx.post(f"{server.url}/read", timeout=30, **kwargs)
    RESULTS.append((f"/read: {name}", response.status_code, response.json().get("error", {}).get("code", "-")))
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    assert_no_server_path(response, server)
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    # and the next number is read as ever
    good = httpx.post(f"{server.url}/read", files={"image": ("n.png", NUMBER, "image/png")}, timeout=30)
    assert good.status_code == 200 and good.json()["readings"][0]["text"] == "4021"
