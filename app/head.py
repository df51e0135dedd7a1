"""HEAD answered wherever GET is (RFC 9110: the same status and headers, no body), as monitors and link checkers
expect. FastAPI's routes answer only the methods they name, so a HEAD went to 405 on every GET endpoint."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """A HEAD request is routed as a GET on a copy of its scope (the server's own scope still says HEAD, so
    uvicorn writes no body either). The answer ends with its headers, and the route is stopped there, so a
    stream that has nothing to say for a while, or never ends (a job's events), does not hold the connection. A route
    without GET answers 405 naming its methods."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = anyio.Event()

        async def headers_only(message: Message) -> None:
            if answered.is_set():
                return
            if message["type"] == "http.response.start":  # the whole answer: the body would not be sent anyway
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                answered.set()

        async def as_get() -> None:
            try:
                await self.app({**scope, "method": "GET"}, receive, headers_only)
            finally:
                answered.set()

        async with anyio.create_task_group() as group:
            group.start_soon(as_get)
            await answered.wait()
            group.cancel_scope.cancel()
