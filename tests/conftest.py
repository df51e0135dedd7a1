from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
