"""The V2 (Open Inference Protocol) HTTP surface's tests (tests/app/v2/): the real app with a fake model, an admin
token and a small body limit, and the requests they send."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.app.conftest import serving_sevens

TOKEN = "v2-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 16 * 1024


def tensor(n: int = 1, name: str = "image", shape: list[int] | None = None, **extra: object) -> dict[str, object]:
    shape = shape or [n, 784]
    return {"name": name, "shape": shape, "datatype": "FP32", "data": [0.0] * int(np.prod(shape)), **extra}


def infer_body(n: int = 1, **extra: object) -> dict[str, object]:
    return {"inputs": [tensor(n)], **extra}


def assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


@pytest.fixture
def admin_settings(settings):
    return settings.model_copy(update={"admin_token": SecretStr(TOKEN), "max_body_bytes": MAX_BODY})


@pytest.fixture
async def client(admin_settings, loader):
    async with serving_sevens(admin_settings, loader) as http:
        yield http
