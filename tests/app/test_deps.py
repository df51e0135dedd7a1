"""The admin token check (app/deps.py). What makes it constant-time is checked as a property of the code,
not by timing requests: every presented token, whatever its length or content, reaches
`hmac.compare_digest` as a digest of the same fixed length as the expected one's, so the comparison
does the same work wherever the tokens differ. (Network timing on a shared 2-core machine cannot
resolve a difference of nanoseconds; a test that claimed to would prove nothing.)"""

from __future__ import annotations

import hmac

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from app.config import Settings
from app.deps import require_admin
from app.errors import AdminDisabled, Unauthorized

TOKEN = "s3cret-token-0123456789"


def request_with(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "POST", "path": "/train", "headers": headers})


@pytest.mark.parametrize(
    "presented, accepted",
    [
        pytest.param(TOKEN, True, id="right"),
        pytest.param(TOKEN[:-1] + "X", False, id="wrong-last-character"),
        pytest.param("X" + TOKEN[1:], False, id="wrong-first-character"),
        pytest.param(TOKEN[:5], False, id="prefix"),
        pytest.param(TOKEN + "tail", False, id="longer"),
        pytest.param("", False, id="empty"),
        pytest.param("x" * 10_000, False, id="huge"),
    ],
)
async def test_every_token_is_compared_as_equal_length_digests(monkeypatch, presented, accepted):
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def recording_compare(a, b):
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr("app.deps.hmac.compare_digest", recording_compare)
    settings = Settings(admin_token=SecretStr(TOKEN))
    if accepted:
        await require_admin(request_with(f"Bearer {presented}"), settings)
    else:
        with pytest.raises(Unauthorized):
            await require_admin(request_with(f"Bearer {presented}"), settings)
    assert len(compared) == 1, "the token must go through hmac.compare_digest exactly once"
    ((a, b),) = compared
    assert isinstance(a, bytes) and isinstance(b, bytes) and len(a) == len(b) == 32
    assert TOKEN.encode() not in (a, b), "compare digests, never the raw token"


async def test_a_missing_header_or_another_scheme_is_refused():
    settings = Settings(admin_token=SecretStr(TOKEN))
    for header in (None, f"Basic {TOKEN}", TOKEN):
        with pytest.raises(Unauthorized):
            await require_admin(request_with(header), settings)


@pytest.mark.parametrize(
    "configured", [TOKEN + "\n", TOKEN + "\r\n", "  " + TOKEN + " "], ids=["newline", "crlf", "spaces"]
)
async def test_a_configured_token_is_taken_without_its_surrounding_whitespace(monkeypatch, configured):
    # kubectl create secret --from-file keeps the file's last newline: the admins must not be locked out
    monkeypatch.setenv("LENET_ADMIN_TOKEN", configured)
    settings = Settings()
    await require_admin(request_with(f"Bearer {TOKEN}"), settings)
    with pytest.raises(Unauthorized):
        await require_admin(request_with("Bearer " + TOKEN[:-1]), settings)


async def test_a_token_of_whitespace_only_leaves_the_admin_endpoints_disabled(monkeypatch):
    monkeypatch.setenv("LENET_ADMIN_TOKEN", " \n")
    with pytest.raises(AdminDisabled):
        await require_admin(request_with("Bearer  "), Settings())
