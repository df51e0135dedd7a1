"""Response compression (app/compression.py): gzip on Accept-Encoding for successful answers; errors stay plain."""

from __future__ import annotations

import gzip

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.compression import MINIMUM_SIZE, ResponseCompression

BIG = b'{"data": [' + b"0.1234, " * 2000 + b"1]}"


async def answer(request: Request) -> Response:
    status = int(request.query_params.get("status", "200"))
    return Response(BIG, status_code=status, media_type="application/json")


async def small(request: Request) -> Response:
    return Response(b"x" * (MINIMUM_SIZE - 1), media_type="application/json")


async def events(request: Request) -> StreamingResponse:
    async def stream():
        yield b"data: 1\n\n" * 200

    return StreamingResponse(stream(), media_type="text/event-stream")


@pytest.fixture
async def http():
    app = ResponseCompression(Starlette(routes=[Route("/", answer), Route("/small", small), Route("/events", events)]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def raw(http: httpx.AsyncClient, path: str, accept: str) -> tuple[httpx.Response, bytes]:
    async with http.stream("GET", path, headers={"Accept-Encoding": accept}) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_a_large_success_is_gzipped_only_when_the_client_accepts_gzip(http):
    response, body = await raw(http, "/", "gzip, deflate")
    assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == BIG and int(response.headers["content-length"]) == len(body) < len(BIG) / 4
    response, body = await raw(http, "/", "deflate")
    assert "content-encoding" not in response.headers and body == BIG


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/?status=400", id="client-error"),
        pytest.param("/?status=503", id="server-error"),
        pytest.param("/small", id="small"),
        pytest.param("/events", id="event-stream"),
    ],
)
async def test_errors_small_answers_and_event_streams_stay_plain(http, path):
    # tritonclient reads an error body without decompressing it, as Triton never compresses errors.
    response, body = await raw(http, path, "gzip")
    assert "content-encoding" not in response.headers
    assert body.startswith((b'{"data"', b"x", b"data: 1"))
