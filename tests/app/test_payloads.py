from __future__ import annotations

import pytest

from app.errors import BadRequest, TooManyInstances
from app.payloads import multipart_files

BINARY = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n\x00\xff"  # CRLFs and dashes inside a file


def body(*parts: tuple[str, str | None, bytes], boundary: str = "XyZ", close: bool = True) -> bytes:
    out = b"preamble to ignore\r\n"
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


@pytest.mark.parametrize("sent,content_type,message", [
    pytest.param(body(("image", "a.png", b"x")), "multipart/form-data", "without a boundary", id="no-boundary"),
    pytest.param(b"just text", "multipart/form-data; boundary=XyZ", "never appears", id="no-delimiter"),
    pytest.param(body(("image", "a.png", b"x"), close=False), "multipart/form-data; boundary=XyZ",
                 "no closing boundary", id="truncated"),
    pytest.param(b"--XyZ\r\nno blank line--XyZ--", "multipart/form-data; boundary=XyZ", "no header block",
                 id="no-header-block"),
    pytest.param(b"--XyZ\r\nContent-Type: image/png\r\n\r\nx\r\n--XyZ--", "multipart/form-data; boundary=XyZ",
                 "no Content-Disposition", id="no-disposition"),
    pytest.param(body(("picture", "a.png", b"x")), "multipart/form-data; boundary=XyZ",
                 "fields sent: picture", id="wrong-field"),
])
def test_malformed_bodies_are_bad_requests(sent, content_type, message):
    with pytest.raises(BadRequest, match=message):
        multipart_files(sent, content_type, "image", 10)


def test_too_many_files():
    sent = body(*[("image", f"{i}.png", b"x") for i in range(4)])
    with pytest.raises(TooManyInstances, match="4 images"):
        multipart_files(sent, "multipart/form-data; boundary=XyZ", "image", 3)
