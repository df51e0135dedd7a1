"""Response compression: Starlette's gzip for clients that send `Accept-Encoding: gzip`, on successful answers only.
Error bodies stay plain, as Triton sends them: tritonclient reads an error body without decompressing it.
Request bodies are decompressed where they are read, under the body limit (app.payloads.read_body)."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MINIMUM_SIZE = 1024  # below about 1 KiB the saving does not pay for the CPU and the extra header
COMPRESS_LEVEL = 1  # as nginx's default: most of the saving on JSON numbers for a fraction of level 9's CPU


class ResponseCompression(GZipMiddleware):
    """Binary-extension answers keep their Inference-Header-Content-Length: it counts the JSON header's bytes in
    the decompressed body, which is how the protocol's clients read it (they decompress, then split)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, minimum_size=MINIMUM_SIZE, compresslevel=COMPRESS_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _accepts_gzip(scope):
            responder = _SuccessResponder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
            await responder(scope, receive, send)
        else:  # no wrapper at all for the clients that do not ask (the hot path of most benchmarks)
            await self.app(scope, receive, send)


class _SuccessResponder(GZipResponder):
    plain = False

    async def send_with_compression(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            self.plain = True
        if self.plain:
            await self.send(message)
        else:
            await super().send_with_compression(message)


def _accepts_gzip(scope: Scope) -> bool:
    # The raw header list, not a Headers object: this runs on every request.
    return any(key == b"accept-encoding" and b"gzip" in value.lower() for key, value in scope["headers"])
