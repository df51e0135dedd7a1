from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# No gRPC server in tests unless one asks for it (LENET_GRPC_PORT=<free port>): its default 8001 is one shared port.
os.environ.setdefault("LENET_GRPC_PORT", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_MNIST = REPO_ROOT / "tests" / "fixtures" / "mnist_small.npz"  # first 1,000 train and 500 test digits
SHARED_MNIST = REPO_ROOT.parent / "shared" / "datasets" / "mnist.npz"
BUNDLED_MODELS = REPO_ROOT / "models"


@pytest.fixture(scope="session")
def small_mnist():
    from training.data import load_mnist

    return load_mnist(FIXTURE_MNIST)


@pytest.fixture(scope="session")
def full_mnist():
    """The real 60k/10k MNIST from ../shared; skipped (with the reason) where it is not beside the repo."""
    from training.data import load_mnist

    if not SHARED_MNIST.exists():
        pytest.skip(f"full MNIST not found at {SHARED_MNIST}; these checks need the real test set")
    return load_mnist(SHARED_MNIST)


def wait_until(
    predicate: Callable[[], object], timeout: float, message: str | Callable[[], str], interval: float = 0.02
) -> object:
    """Wait for a condition instead of sleeping a guessed time: poll `predicate` until it is truthy and return
    its value; after `timeout` seconds fail with `message` (a callable is called then, e.g. for a log tail)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message() if callable(message) else message} (waited {timeout:g} s)")
        time.sleep(interval)
    return value


async def async_wait_until(
    predicate: Callable[[], object], timeout: float, message: str | Callable[[], str], interval: float = 0.005
) -> object:
    """`wait_until` inside a running event loop: polls without blocking the loop the condition depends on."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message() if callable(message) else message} (waited {timeout:g} s)")
        await asyncio.sleep(interval)
    return value
