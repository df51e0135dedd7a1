"""HEAD as GET (app/head.py), in process: routed as GET, the body dropped here whatever server runs it, the
method the route sees is GET while the scope the server holds still says HEAD. (The real server: tests/e2e.)"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI, Request
from starlette.responses import StreamingResponse

from app.head import HeadAsGet

seen: list[str] = []
app = FastAPI()


@app.get("/thing")
async def thing(request: Request) -> dict[str, str]:
    seen.append(request.method)
    return {"thing": "x" * 100}


@app.post("/only-post")
async def only_post() -> dict[str, str]:
    return {}


async def test_head_is_get_without_its_body_and_post_only_routes_still_say_405():
    outer_scopes: list[dict] = []

    async def server(scope, receive, send):  # what a server's own scope holds around the middleware
        outer_scopes.append(scope)
        await HeadAsGet(app)(scope, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://t") as http:
        get, head = await http.get("/thing"), await http.head("/thing")
        assert (get.status_code, head.status_code, head.content) == (200, 200, b"")
        assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
        assert seen[-1] == "GET" and outer_scopes[-1]["method"] == "HEAD"  # the server's scope is not changed
        refused = await http.head("/only-post")
        assert (refused.status_code, refused.headers["allow"]) == (405, "POST")


stopped: list[asyncio.Event] = []


@app.get("/forever")
async def forever() -> StreamingResponse:
    async def events():
        try:
            while True:
                await asyncio.sleep(30)  # a job's events: nothing to say for a while
                yield b": keep-alive\n\n"
        finally:
            stopped[-1].set()

    return StreamingResponse(events(), media_type="text/event-stream")


async def test_head_of_a_stream_that_never_ends_answers_at_once_and_stops_the_stream():
    # A job's events: a HEAD held its keep-alive connection until the job ended (the second outside check's finding)
    stopped.append(asyncio.Event())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=HeadAsGet(app)), base_url="http://t") as http:
        head = await asyncio.wait_for(http.head("/forever"), 5)  # not after the stream's first chunk
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""
        await asyncio.wait_for(stopped[-1].wait(), 5)
