"""Fakes for the service's model interface, so repository and API tests need no TensorFlow."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from app.config import Settings
from app.errors import BrokenModel
from app.main import create_app
from tests.conftest import FIXTURE_MNIST


class FakeModel:
    """Answers every image with the digit written in its version folder (0.99, or its "sure"; a digit of -1:
    0.1 for every class, doubting everything); records the batch sizes. With a "line", its line reader reads
    every line as that text (app.imaging.ctc's frames); "fail" raises."""

    def __init__(self, path: Path) -> None:
        spec = json.loads((path / "fake.json").read_text())
        if spec.get("broken"):
            raise BrokenModel(f"{path}: smoke prediction failed (fake)")
        self.digit = int(spec["digit"])
        self.sure = float(spec.get("sure", 0.99))  # the probability of that digit
        self.line = spec.get("line")  # a line reader that reads every line as this text (None: no line reader)
        self.line_sizes: list[int] = []
        self.line_held = threading.Event()  # clear() it to hold every line reading (up to 5 s) until set() again
        self.line_held.set()
        self.line_entered = threading.Event()
        self.path = path
        self.sizes: list[int] = []
        self.closed = False
        self.delay = threading.Event()  # clear() it to hold every predict (up to 5 s) until set() again
        self.delay.set()
        self.entered = threading.Event()  # set once a predict call has begun (held or not)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.delay.wait(5)
        self.sizes.append(len(batch))
        if self.digit < 0:
            return np.full((len(batch), 10), 0.1, np.float32)
        out = np.full((len(batch), 10), (1 - self.sure) / 9, np.float32)
        out[:, self.digit] = self.sure
        return out

    def read_lines(self, lines: np.ndarray) -> np.ndarray | None:
        if self.line is None or self.closed:
            return None
        self.line_entered.set()
        self.line_held.wait(5)
        if self.line == "fail":
            raise RuntimeError("the line reader failed (fake)")
        assert lines.shape[1:] == (32, 320, 1) and lines.dtype == np.float32
        self.line_sizes.append(len(lines))
        return np.stack([frames_of(self.line)] * len(lines))

    def warm_up(self, batch_sizes: list[int], repeats: int) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakeLoader:
    def __init__(self) -> None:
        self.loaded: dict[Path, FakeModel] = {}
        self.tries: list[Path] = []  # every load, those that failed too

    def __call__(self, path: Path) -> FakeModel:
        self.tries.append(path)
        model = FakeModel(path)
        self.loaded[path] = model
        return model


def frames_of(text: str, frames: int = 80) -> np.ndarray:
    """CTC log-probabilities (frames, 11) of a line reader sure of `text`: each digit in one frame, blanks
    (class 0) around it."""
    probabilities = np.full((frames, 11), 0.002)
    probabilities[:, 0] = 0.98
    for index, digit in enumerate(text):
        at = (index + 1) * frames // (len(text) + 1)
        probabilities[at] = 0.002
        probabilities[at, int(digit) + 1] = 0.98
    return np.log(probabilities / probabilities.sum(axis=1, keepdims=True))


def add_version(
    root: Path,
    name: str,
    version: int,
    digit: int = 7,
    broken: bool = False,
    line: str | None = None,
    sure: float = 0.99,
    **meta,
) -> Path:
    folder = root / name / str(version)
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"fake")
    (folder / "fake.json").write_text(json.dumps({"digit": digit, "broken": broken, "line": line, "sure": sure}))
    (folder / "metadata.json").write_text(json.dumps({"test_accuracy": 0.99, "parameters": 61706, **meta}))
    return folder


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def loader() -> FakeLoader:
    return FakeLoader()


def fake_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for an app over a repository in `tmp_path`, polled fast, batches of 8, no warm-up."""
    options: dict[str, object] = {
        "models_dir": tmp_path / "models",
        "jobs_dir": tmp_path / "jobs",
        "default_model": "lenet5",
        "poll_interval_s": 0.05,
        "max_delay_ms": 5,
        "max_batch_size": 8,
        "warmup_batches": 0,
    }
    return Settings(**(options | overrides))  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return fake_settings(tmp_path)


# ----- an app that admits 2 requests at once (admission and metrics tests) -----
with np.load(FIXTURE_MNIST) as _data:
    PNG_FIELD = {"image": ("d.png", png_bytes(_data["x_test"][0]), "image/png")}


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


@asynccontextmanager
async def served(app: FastAPI, **client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """`app` started (its lifespan) and an httpx client talking to it in process (ASGI), `client.app` the app;
    `client`: more of the client's arguments (headers)."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", **client) as http,
    ):
        http.app = app  # type: ignore[attr-defined]
        yield http


@asynccontextmanager
async def serving_sevens(settings: Settings, loader: FakeLoader) -> AsyncIterator[httpx.AsyncClient]:
    """The app with `settings` over a repository of one fake `lenet5` version, which reads every digit as a 7, and
    an in-process client of it (`served`)."""
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    async with served(create_app(settings, loader)) as http:
        yield http


@pytest.fixture
async def client(settings, loader):
    async with serving_sevens(settings, loader) as http:
        yield http


@pytest.fixture
async def crowded(settings, loader):
    """An app that admits 2 requests at once, with its model held until the test lets it go."""
    async with serving_sevens(settings.model_copy(update={"max_inflight_requests": 2}), loader) as http:
        (model,) = loader.loaded.values()
        yield http, model
        model.delay.set()


# ----- the inference protocol's error object ($inference_error_response and its siblings) -----
V2_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {"type": "string", "minLength": 1}},
}


def assert_v2_error(response: httpx.Response, status: int, contains: str = "") -> str:
    """A /v2 error: `status`, and a body that is the protocol's {"error": "<message>"} and nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    jsonschema.validate(response.json(), V2_ERROR_SCHEMA)
    message: str = response.json()["error"]
    assert contains in message, message
    return message
