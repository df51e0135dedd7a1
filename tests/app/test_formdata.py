"""The multipart parser against an independent one: python-multipart (Starlette's parser), on a corpus and on
generated bodies. Accepted: both read the same parts, or both refuse, or ours alone refuses for one of the
deliberate reasons in STRICTER. Never: ours accepts what python-multipart refuses, or reads other parts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from app.errors import BadRequest, TooManyInstances
from app.formdata import HEADER_LINE_BYTES, parse_form

MAX_PARTS = 8
CT = "multipart/form-data; boundary=B"
# Where ours refuses a body that python-multipart reads: each a form that parsers disagree on, or a limit.
STRICTER = {
    "padding or other bytes after a boundary (python-multipart: padding or content; multipart: error)": "not a delimiter",
    "a preamble of more than blank lines": "no preamble",
    "a repeated parameter or header, or a %22/%0D/%0A escape in a name": "^ambiguous",
    "leftovers or a backslash in a header value, a tab before a parameter": "Content-Type header|Content-Disposition of a part",
    "loose part header syntax (bare LF in a value)": "^malformed multipart part header",
    "a part's Content-Length that does not match its content": "Content-Length",
    "header bytes that are not UTF-8 (python-multipart falls back to Latin-1)": "failed to decode",
    "a header name outside multipart's [A-Za-z0-9_-]": "Invalid segment header name",
    "the limits: header block, parts, boundary length": "over the limit|parts in one multipart body|1 to 70",
}


def python_multipart_parts(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]] | None:
    """The parts python-multipart reads (None: it refuses), with names decoded as Starlette decodes them and the
    RFC 7578 rule that each part has a form-data Content-Disposition with a name."""
    media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        return None
    parts: list[tuple[list[tuple[bytes, bytes]], bytearray]] = []
    field, value, ended = bytearray(), bytearray(), []

    def header_end() -> None:
        parts[-1][0].append((bytes(field).lower(), bytes(value)))
        field.clear()
        value.clear()

    callbacks = {
        "on_part_begin": lambda: parts.append(([], bytearray())),
        "on_header_field": lambda data, start, end: field.extend(data[start:end]),
        "on_header_value": lambda data, start, end: value.extend(data[start:end]),
        "on_header_end": header_end,
        "on_part_data": lambda data, start, end: parts[-1][1].extend(data[start:end]),
        "on_end": lambda: ended.append(True),
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except FormParserError:  # MultipartParseError is one
        return None
    if not ended:  # finalize() does not check that the closing boundary came
        return None
    out = []
    for headers, data in parts:
        dispositions = [v for k, v in headers if k == b"content-disposition"]
        if not dispositions:
            return None
        kind, options = parse_options_header(dispositions[-1])
        if kind != b"form-data" or b"name" not in options:
            return None
        filename = options.get(b"filename")
        out.append((_decoded(options[b"name"]), None if filename is None else _as_browsers_mean(filename), bytes(data)))
    return out


def _as_browsers_mean(filename: bytes) -> str:
    """A filename with the HTML standard's escapes of '"', CR and LF decoded, which python-multipart keeps as sent (ours
    decodes them in a filename, and refuses them in a name)."""
    escapes = {"%22": '"', "%0d": "\r", "%0a": "\n"}
    return re.sub("%(?:22|0d|0a)", lambda m: escapes[m.group().lower()], _decoded(filename), flags=re.IGNORECASE)


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def outcome(body: bytes, content_type: str) -> str:
    """'same', 'both refuse' or 'ours stricter'; fails the test on any other combination."""
    theirs = python_multipart_parts(body, content_type)
    try:
        ours = parse_form(body, content_type, MAX_PARTS)
    except (BadRequest, TooManyInstances) as exc:
        if theirs is None:
            return "both refuse"
        assert any(re.search(pattern, exc.message) for pattern in STRICTER.values()), (
            f"only ours refused, for no listed reason: {exc.message!r}; python-multipart read {theirs!r}"
        )
        return "ours stricter"
    assert theirs is not None, f"ours read {ours!r} where python-multipart refuses the body"
    assert [tuple(part) for part in ours] == theirs
    return "same"


def part(
    disposition: str = 'form-data; name="image"; filename="a.png"',
    content: bytes = b"\x89PNG\r\n\x1a\n--B\r\x00",
    extra: bytes = b"Content-Type: image/png\r\n",
) -> bytes:
    return b"Content-Disposition: " + disposition.encode() + b"\r\n" + extra + b"\r\n" + content


def form(*parts: bytes, boundary: bytes = b"B", before: bytes = b"", after: bytes = b"\r\n") -> bytes:
    return before + b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary + b"--" + after


LONG = "x" * (HEADER_LINE_BYTES - len('Content-Disposition: form-data; name="image"; filename=""'))
CORPUS = [
    # ordinary bodies: both read the same parts
    ("same", CT, form(part()), "one-file"),
    ("same", CT, form(part(), part('form-data; name="note"', b"hello", b""), part(content=b"second")), "several"),
    ("same", CT, form(part('form-data; name="note"', b"only a note", b"")), "other-field-only"),
    ("same", CT, b"--B--\r\n", "empty-form"),
    ("same", 'multipart/form-data; boundary="a b:c"', form(part(), boundary=b"a b:c"), "quoted-boundary"),
    (
        "same",
        'multipart/form-data; boundary="0aZ\'()+_,-./:=?"',
        form(part(), boundary=b"0aZ'()+_,-./:=?"),
        "every-boundary-char",
    ),
    ("same", "multipart/form-data; xboundary=A; boundary=B", form(part()), "boundary-after-xboundary"),
    ("same", "multipart/form-data; charset=utf-8;boundary=B ", form(part()), "charset-and-no-space"),
    ("same", CT, form(part("form-data; name=image; filename=a.png")), "unquoted-parameters"),
    ("same", CT, form(part('Form-Data;  name = "image"', b"")), "spaced-parameters-and-empty-content"),
    ("same", CT, form(part('form-data; name="image"; filename="\u00e9\u20ac.png"')), "utf8-filename"),
    (
        "same",
        CT,
        form(part('form-data; name="image"; filename="x.png"; filename*=UTF-8\'\'%E2%82%AC.png')),
        "filename-star-ignored-by-both",
    ),
    ("same", CT, form(part("form-data; name=\"image\"; filename*=UTF-8''%E2%82%AC.png")), "filename-star-only"),
    ("same", CT, form(part('form-data; name="image"; filename="it\'s 100% a digit.png"')), "quote-and-percent"),
    ("same", CT, form(part(extra=b"content-type: image/png\r\nX-Any: 1\r\n")), "header-case-and-extra"),
    ("same", CT, form(part('form-data; name="image"; filename="' + LONG + '"')), "header-line-at-limit"),
    ("same", CT, form(part(content=b"a\r\n--b\r\n-B\r\n--\r\n-\r--B\n--B--Bx")), "delimiter-prefixes-in-content"),
    ("same", CT, form(part(content=b"a\r\n--")), "content-ends-with-dashes"),
    ("same", CT, form(part(), before=b"\r\n\r\n"), "blank-lines-before"),
    ("same", CT, form(part(), after=b"\r\nepilogue --B\r\n--B\r\nmore"), "epilogue"),
    ("same", CT, form(part(), after=b""), "no-final-crlf"),
    ("same", CT, form(part(), after=b" \t\r\n"), "padding-after-close"),
    (
        "same",
        CT,
        form(part('form-data; name="image"; filename="my %22seven%22.png"')),
        "percent-escaped-quote-in-filename",
    ),
    ("same", CT, form(part('form-data; name="image"; filename="a%0D%0Ab.png"')), "percent-escaped-crlf-in-filename"),
    # refused by both
    ("both refuse", CT, form(part(), before=b"preamble\r\n"), "preamble"),
    ("both refuse", CT, form(part()).replace(b"\r\n", b"\n"), "lf-line-endings"),
    ("both refuse", CT, form(part()).replace(b"--B\r\n", b"--B\n", 1), "lf-after-first-boundary"),
    ("both refuse", CT, form(part()).replace(b"--B\r\n", b"--B \r\n", 1), "padding-after-first-boundary"),
    ("both refuse", CT, form(part())[:-8], "truncated"),
    ("both refuse", CT, b"just text", "no-boundary-in-body"),
    ("both refuse", "multipart/form-data", form(part()), "no-boundary-parameter"),
    ("both refuse", 'multipart/form-data; boundary=""', form(part(), boundary=b'""'), "empty-boundary"),
    ("both refuse", CT, form(part().replace(b"Content-Disposition:", b"Content-Disposition :")), "space-before-colon"),
    ("both refuse", CT, form(part().replace(b"; name", b";\r\n name")), "folded-header"),
    ("both refuse", CT, form(part().replace(b'"a.png"', b'"a.png"\rX')), "bare-cr-in-header"),
    ("both refuse", CT, form(part('form-data; name="image"; filename="x' + LONG + '"')), "header-line-too-long"),
    ("both refuse", CT, form(part(extra=b"".join(b"X-%d: 1\r\n" % i for i in range(8)))), "nine-headers"),
    ("both refuse", CT, form(b"\r\ncontent"), "no-headers"),
    ("both refuse", CT, form(part("form-data")), "no-name"),
    ("both refuse", CT, form(part('attachment; name="image"')), "not-form-data"),
    ("both refuse", 'multipart/form-data; x="a\\\\"; boundary=B', form(part()), "escaped-backslash-in-content-type"),
    # refused by ours alone, each for a reason in STRICTER
    ("ours stricter", CT, form(part(), part()).replace(b"\r\n--B\r\n", b"\r\n--B \t\r\n"), "padding-after-a-delimiter"),
    ("ours stricter", CT, form(part(content=b"a\r\n--BX")), "boundary-then-other-byte-in-content"),
    ("ours stricter", CT, form(part(content=b"a\r\n--B-x")), "boundary-then-one-dash-in-content"),
    ("ours stricter", CT, form(part(content=b"a\r\n--B\rx")), "boundary-then-cr-in-content"),
    ("ours stricter", CT, form(part(), before=b"\r\ntext"), "crlf-then-text-preamble"),
    ("ours stricter", CT, form(part(), before=b"\n"), "lf-preamble"),
    ("ours stricter", "multipart/form-data; boundary=A; boundary=B", form(part()), "repeated-boundary"),
    ("ours stricter", "multipart/form-data;\tboundary=B", form(part()), "tab-before-parameter"),
    ("ours stricter", CT, form(part('form-data;\tname="image"')), "tab-before-a-part-parameter"),
    ("ours stricter", "multipart/form-data; boundary=a:b", form(part(), boundary=b"a:b"), "unquoted-boundary-colon"),
    ("ours stricter", "multipart/form-data; boundary=B x", form(part(), boundary=b"B x"), "boundary-leftover"),
    ("ours stricter", "multipart/form-data; boundary=" + "b" * 71, form(part(), boundary=b"b" * 71), "boundary-71"),
    ("ours stricter", CT, form(part("form-data; name=image x")), "name-leftover"),
    ("ours stricter", CT, form(part('form-data; name="image"x')), "name-after-quote"),
    ("ours stricter", CT, form(part('form-data; name="note"; name="image"')), "repeated-name"),
    ("ours stricter", CT, form(part(extra=b'Content-Disposition: form-data; name="note"\r\n')), "two-dispositions"),
    ("ours stricter", CT, form(part('form-data; name="image%22"; filename="a.png"')), "percent-escaped-quote-in-name"),
    ("ours stricter", CT, form(part('form-data; name="image"; filename="a\\"b.png"')), "backslash-escaped-quote"),
    ("ours stricter", CT, form(part('form-data; name="image"; filename="C:\\\\x\\\\a.png"')), "windows-path"),
    ("ours stricter", CT, form(part().replace(b'"a.png"', b'"a.png"\nX: y')), "bare-lf-in-header"),
    ("ours stricter", CT, form(part(extra=b"Content-Length: 3\r\n", content=b"x")), "part-content-length"),
    ("ours stricter", CT, form(part().replace(b"a.png", b"\xe9.png")), "latin-1-filename"),
    ("ours stricter", CT, form(part(extra=b"X!Y: 1\r\n")), "header-name-with-bang"),
    (
        "ours stricter",
        CT,
        form(part(extra=b"X-Pad: " + b"p" * 4200 + b"\r\nX-Pad: " + b"p" * 4200 + b"\r\n")),
        "header-block-over-8k",
    ),
    ("ours stricter", CT, form(*[part()] * (MAX_PARTS + 1)), "too-many-parts"),
]


@pytest.mark.parametrize("expected,content_type,body", [pytest.param(*case[:3], id=case[3]) for case in CORPUS])
def test_corpus_against_python_multipart(expected, content_type, body):
    assert outcome(body, content_type) == expected


# Generated bodies from parts: half of them made as clients make them (with varied names, filenames, boundaries
# and content that holds pieces of the boundary), half with odd or hostile knobs turned now and then.
def often(usual: Any, *odd: Any) -> st.SearchStrategy[Any]:
    """Mostly `usual`, sometimes one of `odd` (a value listed several times is drawn more often)."""
    return st.sampled_from([usual] * (2 * len(odd) + 2) + list(odd))


TOKEN_CHARS = set("!#$%&'*+.^_`|~-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
CLEAN_NAMES = ["image", "image", "note", "", "a b", "\u00e9"]
CLEAN_FILENAMES = [None, "a.png", "", "\u20ac \u00e9.png", "it's 100%.png"]


@st.composite
def disposition(draw: st.DrawFn, odd: bool) -> bytes:
    def knob(usual: Any, *others: Any) -> Any:
        return draw(often(usual, *others)) if odd else usual

    name = draw(st.sampled_from(CLEAN_NAMES + (['q"t', "p%22", "b\\s", "x;y", "x=y"] if odd else [])))
    filename = draw(st.sampled_from(CLEAN_FILENAMES + (['a"b', "a%22b", "a\\b", "a;b=c"] if odd else [])))
    token = set(name + (filename or "")) <= TOKEN_CHARS and name and filename != ""
    quote = draw(often('"{}"', "{}")) if token else '"{}"'  # clients quote what is not a token
    quote = knob(quote, "{}")
    gap = knob("; ", ";", ";  ", ";\t", " ; ")
    value = knob("form-data", "Form-Data", "attachment") + gap + "name=" + quote.format(name)
    if filename is not None:
        value += gap + "filename=" + quote.format(filename)
    if draw(often(False, True)):
        value += "; filename*=UTF-8''%E2%82%AC.png"
    header = draw(often(b"Content-Disposition: ", b"content-disposition:", b"CONTENT-DISPOSITION:  "))
    header = knob(header, b"Content-Disposition :")
    return header + value.encode(knob("utf-8", "latin-1"), "replace")


@st.composite
def content(draw: st.DrawFn, delimiter: bytes, odd: bool) -> bytes:
    data = [
        b"\r\n",
        b"--",
        b"\r",
        b"\n",
        b"-",
        b"\x00",
        b"\r\n--",
        delimiter,
        b"\r\n" + delimiter[:-1],
        b"\n" + delimiter,
        b"\r" + delimiter,
    ]
    hostile = [
        b"\r\n" + delimiter + b"x",
        b"\r\n" + delimiter + b" \r\n",
        b"\r\n" + delimiter + b"\r\n",
        b"\r\n" + delimiter + b"--",
    ]
    pieces = st.binary(max_size=8) | st.sampled_from(data + (hostile if odd else []))
    return b"".join(draw(st.lists(pieces, max_size=6)))


@st.composite
def multipart_body(draw: st.DrawFn) -> tuple[bytes, str]:
    odd = draw(st.booleans())

    def knob(usual: Any, *others: Any) -> Any:
        return draw(often(usual, *others)) if odd else usual

    boundary = draw(st.text("0aZ'()+_,-./:=? ", min_size=1, max_size=8).filter(lambda b: not b.endswith(" ")))
    quoted = not set(boundary) <= TOKEN_CHARS or draw(st.booleans())
    content_type = (
        "multipart/form-data; "
        + draw(often("", "charset=utf-8; ", "xboundary=x; "))
        + (f'boundary="{boundary}"' if quoted else f"boundary={boundary}")
    )
    content_type = knob(
        content_type,
        content_type.replace('"', ""),
        content_type + "; boundary=x",
        content_type.replace("; ", ";\t"),
        content_type.replace("; b", '; x="a\\\\"; b'),
    )
    delimiter = b"--" + boundary.encode()
    body = draw(often(b"", b"\r\n", b"\r\n\r\n")) + knob(b"", b"\n", b"preamble\r\n")
    for _ in range(draw(st.integers(0, 4))):
        headers = [draw(disposition(odd))] + draw(st.lists(often(b"Content-Type: image/png", b"X-A: b"), max_size=2))
        headers += [knob(b"X-B: c", b"Content-Length: 1", b"X-A : b", b" folded", b"X!: b")]
        body += delimiter + knob(b"", b" ", b"\t ", b"x") + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"
        body += draw(content(delimiter, odd)) + b"\r\n"
    body += delimiter + b"--" + draw(often(b"\r\n", b"", b"\r\nepilogue", b" \r\n"))
    if odd and draw(st.booleans()):  # cut short, or one byte inserted, dropped or replaced anywhere
        at = draw(st.integers(0, len(body)))
        byte = draw(st.sampled_from([b"\r", b"\n", b"-", b" ", b'"', b";", b"x"]))
        body = draw(
            st.sampled_from(
                [body[:at], body[:at] + byte + body[at:], body[:at] + body[at + 1 :], body[:at] + byte + body[at + 1 :]]
            )
        )
    return body, content_type


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multipart_body())
def test_generated_bodies_against_python_multipart(case: tuple[bytes, str]) -> None:
    outcome(*case)
