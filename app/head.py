"""HEAD answered wherever GET is (RFC 9110: the same status and headers, no body), as monitors and link checkers
expect. FastAPI's routes answer only the methods they name, so a HEAD went to 405 on every GET endpoint."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """A HEAD request is routed as a GET on a copy of its scope (the server's own scope still says HEAD, so
    uvicorn writes no body) and its body dropped here too. A route without GET answers 405 naming its methods."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)
