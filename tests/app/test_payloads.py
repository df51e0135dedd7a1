from __future__ import annotations

import gzip
import threading
import tracemalloc
import zlib
from collections.abc import Callable

import orjson
import pytest
from starlette.requests import Request

from app import payloads
from app.errors import BadRequest, BodyTooLarge, TooManyInstances, UnsupportedMediaType
from app.imaging import NO_DIGIT_REASONS
from app.main import create_app
from app.payloads import NO_INK, Limits, images_from_json, images_from_request, multipart_files, read_body
from tests.app.conftest import add_version, served
from tests.conftest import REPO_ROOT

DIGIT = (REPO_ROOT / "examples" / "digit.png").read_bytes()

BINARY = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n\x00\xff"  # CRLFs and dashes inside a file


def body(*parts: tuple[str, str | None, bytes], boundary: str = "XyZ", close: bool = True) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode()
        out += content + b"\r\n"
    if close:
        out += f"--{boundary}--\r\nepilogue".encode()
    return out


def test_files_come_back_in_order_byte_for_byte():
    sent = body(("image", "a.png", BINARY), ("note", None, b"hello"), ("image", "b.png", b"second"))
    files = multipart_files(sent, "multipart/form-data; boundary=XyZ", "image", 10)
    assert files == [("a.png", BINARY), ("b.png", b"second")]


def test_quoted_boundary_and_unnamed_file():
    sent = body(("image", None, b"x"), boundary="a b:c")
    assert multipart_files(sent, 'multipart/form-data; boundary="a b:c"', "image", 10) == [(None, b"x")]


@pytest.mark.parametrize(
    "sent,content_type,message",
    [
        pytest.param(body(("image", "a.png", b"x")), "multipart/form-data", "without a boundary", id="no-boundary"),
        pytest.param(b"just text", "multipart/form-data; boundary=XyZ", "never appears", id="no-delimiter"),
        pytest.param(
            body(("image", "a.png", b"x"), close=False),
            "multipart/form-data; boundary=XyZ",
            "no closing boundary",
            id="truncated",
        ),
        pytest.param(
            b"--XyZ\r\nno blank line--XyZ--",
            "multipart/form-data; boundary=XyZ",
            "no closing boundary",
            id="no-header-block",
        ),
        pytest.param(
            b"--XyZ\r\nContent-Type: image/png\r\n\r\nx\r\n--XyZ--",
            "multipart/form-data; boundary=XyZ",
            "Content-Disposition",
            id="no-disposition",
        ),
        pytest.param(
            b"preamble\r\n" + body(("image", "a.png", b"x")),
            "multipart/form-data; boundary=XyZ",
            "no preamble",
            id="preamble",
        ),
        pytest.param(
            body(("picture", "a.png", b"x")),
            "multipart/form-data; boundary=XyZ",
            "fields sent: picture",
            id="wrong-field",
        ),
    ],
)
def test_malformed_bodies_are_bad_requests(sent, content_type, message):
    with pytest.raises(BadRequest, match=message):
        multipart_files(sent, content_type, "image", 10)


def test_too_many_files():
    sent = body(*[("image", f"{i}.png", b"x") for i in range(4)])
    with pytest.raises(TooManyInstances, match="4 images"):
        multipart_files(sent, "multipart/form-data; boundary=XyZ", "image", 3)


def image_body(content: bytes, boundary: str = "XyZ") -> bytes:
    return body(("image", "a.png", content), boundary=boundary)


def test_the_boundary_is_the_boundary_parameter_not_a_suffix_of_another():
    # The old pattern was unanchored and took A from `xboundary=A`; every standard parser takes B.
    sent = image_body(b"png", boundary="B")
    assert multipart_files(sent, "multipart/form-data; xboundary=A; boundary=B", "image", 1) == [("a.png", b"png")]


@pytest.mark.parametrize(
    "content_type,boundary",
    [
        pytest.param('multipart/form-data; boundary=""', '""', id="empty-quoted"),
        pytest.param("multipart/form-data; boundary=B; boundary=C", "B", id="repeated"),
        pytest.param("multipart/form-data; boundary=B x", "B", id="leftover-after-token"),
        pytest.param("multipart/form-data; boundary=" + "b" * 71, "b" * 71, id="longer-than-70"),
    ],
)
def test_an_unusable_or_ambiguous_boundary_is_a_bad_request(content_type, boundary):
    with pytest.raises(BadRequest, match="boundary|Content-Type"):
        multipart_files(image_body(b"png", boundary=boundary), content_type, "image", 1)


@pytest.mark.parametrize(
    "after",
    [
        pytest.param(b"X", id="other-byte"),
        pytest.param(b" \t", id="padding"),
        pytest.param(b"-X", id="one-dash"),
    ],
)
def test_a_boundary_inside_content_is_refused_not_split_on(after):
    # A line that starts with the boundary but is not a delimiter: python-multipart reads it as content (after
    # padding, as a delimiter), multipart refuses the body. Refusing cannot differ from a proxy's reading.
    content = b"head\r\n--XyZ" + after + b"\r\nContent-Disposition: form-data; name=image\r\n\r\ntail"
    with pytest.raises(BadRequest, match="starts with the boundary but is not a delimiter"):
        multipart_files(image_body(content), "multipart/form-data; boundary=XyZ", "image", 10)


def test_a_huge_part_header_is_refused():
    header = b"X-Pad: " + b"a" * (1 << 20)
    sent = b"--XyZ\r\nContent-Disposition: form-data; name=image\r\n" + header + b"\r\n\r\nx\r\n--XyZ--\r\n"
    with pytest.raises(BadRequest, match="header over the limit"):
        multipart_files(sent, "multipart/form-data; boundary=XyZ", "image", 1)


def test_parts_beyond_the_images_and_a_few_other_fields_are_refused():
    fields = [("note", None, b"x")] * payloads.MAX_OTHER_FIELDS
    assert multipart_files(body(("image", "a.png", b"x"), *fields), "multipart/form-data; boundary=XyZ", "image", 1)
    with pytest.raises(TooManyInstances, match="parts"):
        multipart_files(
            body(("image", "a.png", b"x"), *fields, ("note", None, b"x")),
            "multipart/form-data; boundary=XyZ",
            "image",
            1,
        )


MiB = 1 << 20
HOSTILE: dict[str, Callable[[], bytes]] = {  # bodies of 3 to 4.5 MiB, built when a test needs one
    "many tiny parts": lambda: b"--XyZ\r\nContent-Disposition: form-data; name=image\r\n\r\nx\r\n" * 80_000,
    "one huge header": lambda: (
        b"--XyZ\r\nContent-Disposition: form-data; name=image\r\nX-Pad: " + b"a" * (4 * MiB) + b"\r\n\r\nx\r\n--XyZ--"
    ),
    "near-delimiter repeated": lambda: image_body(b"\r\n--XyZX" * (MiB // 2)),
    "near-delimiter prefix repeated": lambda: image_body(b"\r\n--Xy" * (MiB // 2)),
    "one huge part": lambda: image_body(b"\x89PNG" * MiB),
}


@pytest.mark.parametrize("build", [pytest.param(build, id=name) for name, build in HOSTILE.items()])
def test_hostile_bodies_cost_at_most_one_and_a_half_bodies_of_memory(build):
    sent = build()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            files = multipart_files(sent, "multipart/form-data; boundary=XyZ", "image", 1024)
        except (BadRequest, TooManyInstances):
            files = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del files
    assert peak < 1.5 * len(sent), f"peak {peak / len(sent):.2f}x the body ({len(sent)} bytes)"


def request_with(sent: bytes, content_type: str = "multipart/form-data; boundary=XyZ") -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": sent, "more_body": False}

    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(sent)).encode())]
    return Request(
        {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "query_string": b""}, receive
    )


@pytest.mark.parametrize(
    "padding,in_worker",
    [
        pytest.param(0, False, id="small-inline"),
        pytest.param(256 * 1024, True, id="large-in-a-thread"),
    ],
)
async def test_large_multipart_bodies_are_parsed_off_the_event_loop(monkeypatch, padding, in_worker):
    threads = []
    real = payloads.multipart_files

    def recording(*args: object) -> list[tuple[str | None, bytes]]:
        threads.append(threading.get_ident())
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(payloads, "multipart_files", recording)
    sent = body(("note", None, b"n" * padding), ("image", "digit.png", DIGIT))
    images = await images_from_request(
        request_with(sent), Limits(max_body_bytes=1 << 24, max_instances=4, max_image_pixels=1 << 20)
    )
    assert images.pixels.shape == (1, 28, 28, 1) and images.reasons == (None,)
    (parsed_in,) = threads
    assert (parsed_in != threading.get_ident()) is in_worker


@pytest.mark.parametrize(
    "sent,content_type,message",
    [
        pytest.param(
            body(("image", "a.png" + "x" * 8192, DIGIT)),
            "multipart/form-data; boundary=XyZ",
            "header over the limit",
            id="huge-header",
        ),
        pytest.param(
            image_body(b"\r\n--XyZX"), "multipart/form-data; boundary=XyZ", "not a delimiter", id="near-delimiter"
        ),
        pytest.param(
            image_body(DIGIT, boundary="B"),
            "multipart/form-data; boundary=B; boundary=C",
            "appears twice",
            id="repeated-boundary",
        ),
    ],
)
async def test_a_bad_multipart_body_gets_the_400_envelope(settings, loader, sent, content_type, message):
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)
    async with served(app) as http:
        response = await http.post("/predict", content=sent, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_request" and message in error["message"]


# ----- images that hold no digit -----
def test_the_array_reason_is_a_code_imaging_defines():
    assert NO_INK in NO_DIGIT_REASONS


async def test_many_list_instances_get_their_reasons_in_one_pass(monkeypatch):
    def per_instance(instance: object) -> None:
        raise AssertionError("the per-instance path was taken")

    monkeypatch.setattr(payloads, "preprocess_array", per_instance)
    marked = [[[128 + index % 128] + [0] * 27] + [[0] * 28] * 27 for index in range(256)]  # one pixel of ink
    instances = [[[0] * 28] * 28 if index % 3 else marked[index] for index in range(256)]
    images = await images_from_json(
        orjson.dumps({"instances": instances}),
        Limits(max_body_bytes=1 << 24, max_instances=256, max_image_pixels=1 << 20),
    )
    assert images.pixels.shape == (256, 28, 28, 1)
    expected = [None if index % 3 == 0 else NO_INK for index in range(256)]
    assert list(images.reasons) == expected
    assert images.with_digit.tolist() == [index for index, reason in enumerate(expected) if reason is None]


# ----- compressed bodies (Content-Encoding) -----
def streamed(chunks: list[bytes], **headers: str) -> Request:
    """A request whose body arrives in `chunks`, as a socket delivers it."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {"type": "http", "method": "POST", "path": "/v2/models/m/infer", "headers": raw, "query_string": b""}, receive
    )


def pieces(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize(
    "encoding,compress",
    [
        pytest.param("gzip", gzip.compress, id="gzip"),
        pytest.param("x-gzip", gzip.compress, id="x-gzip"),
        pytest.param("deflate", zlib.compress, id="deflate-zlib"),
        pytest.param("identity", lambda data: data, id="identity"),
    ],
)
async def test_a_compressed_body_is_read_decompressed(encoding, compress):
    plain = bytes(range(256)) * 200
    request = streamed(pieces(compress(plain)), content_encoding=encoding)
    assert await read_body(request, len(plain)) == plain


async def test_two_gzip_members_are_one_body():
    request = streamed(pieces(gzip.compress(b"first ") + gzip.compress(b"second")), content_encoding="gzip")
    assert await read_body(request, 100) == b"first second"


async def test_the_limit_applies_to_the_decompressed_size():
    plain = b"a" * 5000
    assert await read_body(streamed([gzip.compress(plain)], content_encoding="gzip"), 5000) == plain
    with pytest.raises(BodyTooLarge, match="decompressed body exceeds the limit of 4999 bytes"):
        await read_body(streamed([gzip.compress(plain)], content_encoding="gzip"), 4999)


def bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed (about 1,000:1), built without holding them all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(size >> 20)) + compressor.flush()


async def test_a_compression_bomb_is_refused_without_inflating_it():
    sent = bomb(1 << 30)  # 1 GiB of zeros in ~1 MiB
    limit = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge, match="decompressed"):
            await read_body(streamed(pieces(sent, 64 * 1024), content_encoding="gzip"), limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit + 2 * len(sent), f"peak {peak / limit:.1f}x the limit"


@pytest.mark.parametrize(
    "chunks,encoding,error,message",
    [
        pytest.param([gzip.compress(b"x" * 100)[:-5]], "gzip", BadRequest, "truncated", id="truncated"),
        pytest.param([gzip.compress(b"x"), b"junk"], "gzip", BadRequest, "after the end", id="trailing-junk"),
        pytest.param([b"not compressed at all"], "gzip", BadRequest, "not valid gzip", id="not-gzip"),
        pytest.param([zlib.compress(b"x")[2:-4]], "deflate", BadRequest, "not valid deflate", id="raw-deflate"),
        pytest.param([b"x"], "br", UnsupportedMediaType, "'br'", id="brotli"),
        pytest.param([b"x"], "gzip, gzip", UnsupportedMediaType, "one", id="stacked"),
    ],
)
async def test_a_bad_or_unknown_encoding_is_refused(chunks, encoding, error, message):
    with pytest.raises(error, match=message):
        await read_body(streamed(chunks, content_encoding=encoding), 1 << 20)
