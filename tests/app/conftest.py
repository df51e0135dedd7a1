"""Fakes for the service's model interface, so repository and API tests need no TensorFlow."""
from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.config import Settings
from app.errors import BrokenModel


class FakeModel:
    """Answers every image with the digit written in its version folder; records the batch sizes."""

    def __init__(self, path: Path) -> None:
        spec = json.loads((path / "fake.json").read_text())
        if spec.get("broken"):
            raise BrokenModel(f"{path}: smoke prediction failed (fake)")
        self.digit = int(spec["digit"])
        self.path = path
        self.sizes: list[int] = []
        self.closed = False
        self.delay = threading.Event()  # clear() it to hold every predict (up to 5 s) until set() again
        self.delay.set()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.delay.wait(5)
        self.sizes.append(len(batch))
        out = np.full((len(batch), 10), 0.01 / 9, np.float32)
        out[:, self.digit] = 0.99
        return out

    def warm_up(self, batch_sizes: list[int], repeats: int) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakeLoader:
    def __init__(self) -> None:
        self.loaded: dict[Path, FakeModel] = {}

    def __call__(self, path: Path) -> FakeModel:
        model = FakeModel(path)
        self.loaded[path] = model
        return model


def add_version(root: Path, name: str, version: int, digit: int = 7, broken: bool = False, **meta) -> Path:
    folder = root / name / str(version)
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"fake")
    (folder / "fake.json").write_text(json.dumps({"digit": digit, "broken": broken}))
    (folder / "metadata.json").write_text(json.dumps({"test_accuracy": 0.99, "parameters": 61706, **meta}))
    return folder


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def loader() -> FakeLoader:
    return FakeLoader()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs", default_model="lenet5",
                    poll_interval_s=0.05, max_delay_ms=5, max_batch_size=8, warmup_batches=0)
