"""Turn request bodies into model input: size-limited reading, multipart image fields, JSON instances.
Every failure is a domain error with a 4xx status; nothing here knows about the model. An image that holds
no digit is not a failure: it comes back with the reason (a code of app.imaging.NO_DIGIT_REASONS)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from dataclasses import dataclass

import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from app.arrays import batch_from_lists, no_ink, preprocess_array
from app.errors import (
    BadArray,
    BadImage,
    BadRequest,
    BodyTooLarge,
    RequestTimeout,
    ServiceError,
    TooManyInstances,
    UnsupportedMediaType,
)
from app.formdata import parse_form
from app.imaging import NoDigit, preprocess_image

# Images up to this size (a 28x28 PNG is 0.3-1 KiB) are prepared on the event loop, where they cost tens of
# microseconds; bigger ones in a thread: a canvas export costs ~4 ms and a photo 10-30 ms, too long to hold the loop.
INLINE_IMAGE_BYTES = 4 * 1024
INLINE_FORM_BYTES = 64 * 1024  # smaller multipart bodies are parsed on the event loop (a thread hop costs more)
FIELD = "image"
MAX_OTHER_FIELDS = 16  # parts besides the images that a request may carry
GZIP_MAGIC = b"\x1f\x8b"
NO_INK = "no_ink"  # the reason of an all-zero JSON array instance (a code of app.imaging.NO_DIGIT_REASONS)
# zlib window bits of each Content-Encoding: "deflate" is the zlib format (RFC 9110 8.4.1.2), as clients send it.
WINDOW_BITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True)
class Images:
    """A request's images in order: float32 [n,28,28,1] in 0..1, and for each the reason it holds no digit
    (None when it holds one). A no-digit image's pixels are zeros; only `with_digit` go to the model."""

    pixels: np.ndarray
    reasons: tuple[str | None, ...]

    @classmethod
    def of(cls, decoded: list[tuple[np.ndarray, str | None]]) -> Images:
        return cls(np.stack([image for image, _ in decoded])[..., None], tuple(reason for _, reason in decoded))

    @property
    def with_digit(self) -> np.ndarray:
        """Indices of the images that hold a digit."""
        return np.flatnonzero(np.array([reason is None for reason in self.reasons], bool))


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_instances: int
    max_image_pixels: int
    body_timeout_s: float = 10.0
    max_read_digits: int = 32


async def read_body(request: Request, max_bytes: int, timeout_s: float = 10.0) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to be too large (before reading it all),
    and with 408 when it has not all arrived within `timeout_s` (a stalled upload frees its slot).
    A gzip or deflate body (Content-Encoding) is inflated as it arrives, and the limit holds for both the
    bytes sent and the bytes they inflate to: a compression bomb stops at the limit, never inflated whole."""
    inflater = Inflater.for_encoding(request.headers.get("content-encoding"), max_bytes)
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise BodyTooLarge(f"body of {int(declared)} bytes exceeds the limit of {max_bytes}")
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(f"body exceeds the limit of {max_bytes} bytes")
                chunks.append(inflater.feed(chunk) if inflater else chunk)
    except ClientDisconnect:
        raise BadRequest("the client disconnected before sending the whole body") from None
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    if inflater:
        inflater.finish()
    return b"".join(chunks)


class Inflater:
    """Streaming gzip or deflate decoding with a cap on the output: each chunk is inflated to at most what is
    left of the limit plus one byte, so more than the limit is never held."""

    ACCEPTED = "gzip, deflate"

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self.encoding = encoding
        self.room = max_bytes
        self.max_bytes = max_bytes
        self._decoder = zlib.decompressobj(WINDOW_BITS[encoding])

    @classmethod
    def for_encoding(cls, header: str | None, max_bytes: int) -> Inflater | None:
        """None for a plain body; 415 for a coding we do not decode (RFC 9110 15.5.16)."""
        encoding = (header or "").strip().lower()
        if encoding in ("", "identity"):
            return None
        if encoding not in WINDOW_BITS:
            what = "one coding at a time" if "," in encoding else "the accepted codings"
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding[:40]!r} is not accepted; send {what}: {cls.ACCEPTED} (or none)",
                headers={"Accept-Encoding": cls.ACCEPTED},
            )
        return cls(encoding, max_bytes)

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._decoder.eof:  # gzip allows several members one after another (RFC 1952); deflate does not
                if self.encoding == "deflate" or not GZIP_MAGIC.startswith(data[:2]):
                    raise BadRequest(f"data after the end of the {self.encoding} stream")
                self._decoder = zlib.decompressobj(WINDOW_BITS[self.encoding])
            try:
                piece = self._decoder.decompress(data, self.room + 1)
            except zlib.error as exc:
                kind = "deflate (zlib)" if self.encoding == "deflate" else "gzip"
                raise BadRequest(f"body is not valid {kind} data ({exc})") from None
            if len(piece) > self.room:
                raise BodyTooLarge(f"decompressed body exceeds the limit of {self.max_bytes} bytes")
            self.room -= len(piece)
            out.append(piece)
            data = self._decoder.unused_data
        return b"".join(out)

    def finish(self) -> None:
        if not self._decoder.eof:
            raise BadRequest(f"the {self.encoding} body is truncated: its stream does not end")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def images_from_request(request: Request, limits: Limits) -> Images:
    """The images of a multipart upload (field `image`) or JSON `{"instances": [...]}`, in order."""
    kind = accepted_media_type(request, "'instances'")
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)
    if kind != "multipart/form-data":
        return await images_from_json(body, limits, typed=kind != "")
    files = await _multipart_files(request, body, limits)
    return Images.of([await _decode(data, limits, _where(index, name)) for index, (name, data) in enumerate(files)])


ACCEPTED_MEDIA_TYPES = ("multipart/form-data", "application/json", "")  # "": none sent, read as JSON


def accepted_media_type(request: Request, instances: str) -> str:
    """The request's media type, or 415 naming what to send (`instances`: what the JSON form holds)."""
    kind = media_type(request)
    if kind not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"content type {kind!r} is not accepted; send multipart/form-data with field "
            f"'image' or application/json with {instances}"
        )
    return kind


async def _multipart_files(request: Request, body: bytes, limits: Limits) -> list[tuple[str | None, bytes]]:
    args = (body, request.headers.get("content-type", ""), FIELD, limits.max_instances, request.url.path)
    if len(body) <= INLINE_FORM_BYTES:
        return multipart_files(*args)
    # parsing a body of megabytes would hold up every other request on the event loop
    return await run_in_threadpool(multipart_files, *args)


def _where(index: int, filename: str | None) -> str:
    return f"image[{index}] ({filename or 'unnamed'})"


def multipart_files(
    body: bytes, content_type: str, field: str, max_files: int, route: str = "/predict"
) -> list[tuple[str | None, bytes]]:
    """The files sent in `field` of a multipart/form-data body (RFC 7578), in order, as (filename, content);
    `route` (the request's path) for the example in the error when there are none."""
    parts = parse_form(body, content_type, max_files + MAX_OTHER_FIELDS)
    files = [(part.filename, part.content) for part in parts if part.name == field]
    if not files:
        sent = ", ".join(sorted({part.name for part in parts})) or "none"
        example = "number.png" if route.endswith("/read") else "digit.png"
        raise BadRequest(
            f"no file in field '{field}' (fields sent: {sent}); e.g. curl -F {field}=@{example} ...{route}"
        )
    if len(files) > max_files:
        raise TooManyInstances(f"{len(files)} images in one request; the limit is {max_files}")
    return files


NO_CONTENT_TYPE = (
    "no Content-Type was sent and the body is not JSON; send an image as multipart/form-data in field 'image' "
    "(curl -F image=@digit.png ...) or application/json with 'instances'"
)


def json_instances(body: bytes, limits: Limits, accepted: str, typed: bool = True) -> list[object]:
    """The `instances` list of a JSON body; `accepted` says what they may be, for the error message. A body
    sent without a Content-Type (`typed` False) is read as JSON too; if it is not JSON, 415 says what to send
    (a file posted with --data-binary, not -F)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not typed:
            raise UnsupportedMediaType(NO_CONTENT_TYPE) from None
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest(f'JSON body must be an object with "instances": a list of {accepted}')
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequest('"instances" must be a non-empty list')
    if len(instances) > limits.max_instances:
        raise TooManyInstances(f"{len(instances)} instances in one request; the limit is {limits.max_instances}")
    return instances


async def images_from_json(body: bytes, limits: Limits, typed: bool = True) -> Images:
    instances = json_instances(body, limits, '28x28 arrays or {"b64": ...}', typed)
    if all(type(i) is list for i in instances) and b"true" not in body and b"false" not in body:
        batch = batch_from_lists(instances)
        if batch is not None:
            return Images(batch[..., None], tuple(NO_INK if blank else None for blank in no_ink(batch).tolist()))
    images = []
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        if isinstance(instance, dict):
            images.append(await _decode(_b64(instance, where), limits, where))
        else:
            try:
                array = preprocess_array(instance)
            except BadArray as exc:
                raise BadArray(f"{where}: {exc.message}") from None
            images.append((array, NO_INK if no_ink(array[None])[0] else None))
    return Images.of(images)


async def image_files_from_request(request: Request, limits: Limits) -> list[tuple[str, bytes]]:
    """The image files of a multipart upload (field `image`) or JSON `{"instances": [{"b64": ...}]}`, in order,
    undecoded, each with where it came from (for error messages): for routes that read more than one digit."""
    kind = accepted_media_type(request, "'instances' of {\"b64\": ...}")
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)
    if kind == "multipart/form-data":
        files = await _multipart_files(request, body, limits)
        return [(_where(index, name), data) for index, (name, data) in enumerate(files)]
    instances = json_instances(body, limits, '{"b64": "<base64 image file>"}', typed=kind != "")
    out = []
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        if not isinstance(instance, dict):
            raise BadRequest(f'{where}: an instance must be {{"b64": "<base64 image file>"}} (arrays hold one digit)')
        out.append((where, _b64(instance, where)))
    return out


def _b64(instance: dict[str, object], where: str) -> bytes:
    encoded = instance.get("b64")
    if not isinstance(encoded, str) or set(instance) != {"b64"}:
        raise BadRequest(f'{where}: an object instance must be {{"b64": "<base64 image file>"}}')
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage(f"{where}: invalid base64 ({exc})") from None


async def _decode(data: bytes, limits: Limits, where: str) -> tuple[np.ndarray, str | None]:
    """An image file as (28x28 pixels, None), or (zeros, the reason) when it holds no digit."""
    try:
        if len(data) <= INLINE_IMAGE_BYTES:
            return preprocess_image(data, max_pixels=limits.max_image_pixels), None
        return await run_in_threadpool(preprocess_image, data, max_pixels=limits.max_image_pixels), None
    except NoDigit as exc:
        return np.zeros((28, 28), np.float32), exc.reason
    except ServiceError as exc:
        exc.message = f"{where}: {exc.message}"
        raise
