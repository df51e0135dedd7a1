"""Split a multipart/form-data body (RFC 7578) into its parts: the `multipart` package does the framing; this
module adds the limits and turns away the forms that parsers read differently, so that a proxy or firewall in
front of the service either sees the same parts or refuses the body too.

Refused: a preamble other than blank lines, padding or other bytes after a boundary inside the body, loose
header syntax (space before the colon, folded lines, a bare CR or LF), Content-Type and Content-Disposition
values with leftovers, repeated parameters or backslashes, %22/%0D/%0A escapes in a part's name (browsers and
python-multipart decode them differently, so they would differ on what the part is), and parts beyond the limits. In a
filename, which only names the file in messages, those escapes are decoded as browsers mean them (the HTML standard's
encoding of '"', CR and LF): browsers, curl and httpx send a quote in a filename so. The body is parsed as one chunk:
each part's content is one slice of it, so parsing holds at most about one extra body's worth of memory."""

from __future__ import annotations

import re
from typing import NamedTuple

# The `multipart` package (multipart.py); python-multipart's `multipart` compatibility shim hands over to it.
from multipart import MultipartError, MultipartSegment, ParserLimitReached, PushMultipartParser, parse_options_header

from app.errors import BadRequest, TooManyInstances

HEADER_LINE_BYTES = 4096 + 128  # one header line of a part: the default of both multipart and python-multipart
HEADERS_PER_PART = 8  # RFC 7578 needs at most 3 (Content-Disposition, Content-Type, Content-Transfer-Encoding)
HEADER_BLOCK_BYTES = 8 * 1024  # all header lines of one part together
BOUNDARY_CHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")  # RFC 2046 bchars, 1-70

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# One `; name=value` as multipart's parse_options_header consumes it (spaces only around `;` and `=`); quoted
# values without backslashes, whose escaping python-multipart's parameter splitter miscounts.
_PARAMETER = re.compile(rf'[ \t]*; *([A-Za-z0-9_-]+\*?) *= *("[^"\\\r\n]*"|{_TOKEN})')
_MEDIA_TYPE = re.compile(rf"[ \t]*({_TOKEN}/{_TOKEN})")
_DISPOSITION = re.compile(r"[ \t]*(form-data)", re.IGNORECASE)
_HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*")
_BLANK_LINES = re.compile(rb"[\r\n]*")
# Fast paths for what browsers, curl and HTTP libraries send; anything else takes the full checks.
_PLAIN_CONTENT_TYPE = re.compile(r"multipart/form-data; ?boundary=(?:([0-9A-Za-z'+_.-]{1,70})|\"([^\"]{1,70})\")")
_PLAIN_HEADERS = re.compile(
    rb'Content-Disposition: form-data; name="[^"%\\\r\n]*"(?:; filename="[^"%\\\r\n]*")?'
    rb"(?:\r\nContent-Type: [0-9A-Za-z.+-]+/[0-9A-Za-z.+-]+)?"
)
_AMBIGUOUS_ESCAPE = re.compile(r"%(?:22|0d|0a)", re.IGNORECASE)  # multipart decodes them (as browsers mean them)


class FormPart(NamedTuple):
    name: str
    filename: str | None
    content: bytes


def boundary_of(content_type: str) -> bytes:
    """The boundary of a `multipart/form-data; boundary=...` Content-Type value."""
    plain = _PLAIN_CONTENT_TYPE.fullmatch(content_type)
    if plain is not None and BOUNDARY_CHARS.fullmatch(plain_boundary := plain.group(1) or plain.group(2)):
        return plain_boundary.encode("ascii")
    media, parameters = _parameters(content_type, _MEDIA_TYPE, "Content-Type header")
    if media != "multipart/form-data":
        raise BadRequest(f"content type {media!r} is not multipart/form-data")
    if "boundary" not in parameters:
        raise BadRequest("multipart/form-data without a boundary parameter")
    boundary: str = parse_options_header(content_type)[1]["boundary"]
    if not BOUNDARY_CHARS.fullmatch(boundary):
        raise BadRequest(f"multipart boundary {boundary!r} is not 1 to 70 of the characters RFC 2046 allows")
    return boundary.encode("ascii")


def parse_form(body: bytes, content_type: str, max_parts: int) -> list[FormPart]:
    """Every part of the body, in order; BadRequest for a malformed or ambiguous body, TooManyInstances past
    `max_parts`. Parsing stops at the first fault, so a hostile body costs no more than its valid prefix."""
    boundary = boundary_of(content_type)
    blank = _BLANK_LINES.match(body)  # blank lines before the first boundary are tolerated
    first = blank.end() if blank else 0
    if not body.startswith(b"--" + boundary, first):
        where = "never appears" if b"--" + boundary not in body else "must begin the body (no preamble)"
        raise BadRequest(f"malformed multipart body: the boundary {where}")
    parser = PushMultipartParser(
        boundary, max_header_size=HEADER_LINE_BYTES, max_header_count=HEADERS_PER_PART, strict=True
    )
    parts: list[FormPart] = []
    delimiter = b"\r\n--" + boundary
    position = first + len(boundary) + 4  # where the first part's headers begin, after `--boundary\r\n`
    segment: MultipartSegment | None = None
    content: list[bytes] = []
    try:
        for event in parser.parse(body):
            if isinstance(event, MultipartSegment):
                if len(parts) >= max_parts:
                    raise TooManyInstances(f"more than {max_parts} parts in one multipart body")
                position = _check_headers(body, position)  # now where its content begins
                segment = event
            elif event is None:
                assert segment is not None and segment.name is not None
                data = content[0] if len(content) == 1 else b"".join(content)
                parts.append(FormPart(segment.name, segment.filename, data))
                position += len(data)
                if not body.startswith(delimiter, position):  # the header checks rely on this bookkeeping
                    raise RuntimeError("multipart framing out of step with the parser")
                position += len(delimiter) + 2  # past `\r\n--boundary\r\n`, where the next part's headers begin
                content = []
            else:
                content.append(event)
    except ParserLimitReached as exc:
        raise BadRequest(
            f"multipart part header over the limit ({exc}): at most {HEADERS_PER_PART} lines of "
            f"{HEADER_LINE_BYTES} bytes, {HEADER_BLOCK_BYTES} bytes in all"
        ) from None
    except MultipartError as exc:
        raise BadRequest(f"malformed multipart body: {_describe(exc)}") from None
    try:
        parser.close()
    except MultipartError:
        raise BadRequest("malformed multipart body: no closing boundary (truncated upload?)") from None
    return parts


def _check_headers(body: bytes, start: int) -> int:
    """Check the raw header block of the part that begins at `start`, which the parser has just read;
    return where its content begins."""
    end = body.find(b"\r\n\r\n", start, start + HEADER_BLOCK_BYTES + 4)
    if end == -1:
        raise BadRequest(f"multipart part header over the limit: more than {HEADER_BLOCK_BYTES} bytes")
    if _PLAIN_HEADERS.fullmatch(body, start, end):
        return end + 4
    dispositions = []
    for line in body[start:end].split(b"\r\n"):
        if not _HEADER_LINE.fullmatch(line):
            raise BadRequest(
                f"malformed multipart part header {line[:80]!r}: expected `Name: value` with no "
                "space before the colon, no folding and no bare CR or LF"
            )
        name, _, value = line.partition(b":")
        if name.lower() == b"content-disposition":
            dispositions.append(value.decode("utf-8", "replace"))
    if len(dispositions) != 1:
        raise BadRequest("ambiguous multipart part: it must have exactly one Content-Disposition header")
    _, parameters = _parameters(dispositions[0], _DISPOSITION, "Content-Disposition of a part")
    if "name" in parameters and _AMBIGUOUS_ESCAPE.search(parameters["name"]):
        raise BadRequest(
            "ambiguous multipart part: its name holds a %22, %0D or %0A escape, which parsers decode differently"
        )
    return end + 4


def _parameters(value: str, kind: re.Pattern[str], where: str) -> tuple[str, dict[str, str]]:
    """The type and raw parameters of a header value; BadRequest unless every byte belongs to one parameter
    (leftovers are where parsers part ways: one stops at a space, another keeps it)."""
    match = kind.match(value)
    if match is None:
        raise BadRequest(f"malformed {where}: {value[:120]!r}")
    parameters: dict[str, str] = {}
    position = match.end()
    while (parameter := _PARAMETER.match(value, position)) is not None:
        key, raw = parameter.group(1).lower(), parameter.group(2)
        if key in parameters:
            raise BadRequest(f"ambiguous {where}: parameter {key!r} appears twice")
        if key.endswith("*") and raw.startswith('"'):
            raise BadRequest(f"ambiguous {where}: extended parameter {key!r} must not be quoted")
        parameters[key] = raw
        position = parameter.end()
    if value[position:].strip(" \t"):
        raise BadRequest(f"malformed {where}: unexpected {value[position : position + 40]!r} in {value[:120]!r}")
    return match.group(1).lower(), parameters


def _describe(exc: MultipartError) -> str:
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    if message.endswith("Missing name option"):  # multipart sees no parameter after a tab, python-multipart does
        return "Content-Disposition of a part has no name parameter (or a tab before it)"
    if message == "Unexpected byte in front of first boundary":
        return "the boundary must begin the body (no preamble)"
    if message in ("Unexpected bytes after boundary", "Unexpected byte after first boundary"):
        return (
            "a line starts with the boundary but is not a delimiter (padding or other bytes after it); "
            "choose a boundary that does not occur in the content"
        )
    return message
