"""Shared by the imaging tests (tests/app/test_imaging.py, tests/app/test_decode_uploads.py; the number tests
use its encoders too): MNIST test digits, encoders, and measures of how alike two 28x28 images are."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.conftest import FIXTURE_MNIST

with np.load(FIXTURE_MNIST) as _data:
    DIGITS = _data["x_test"][:10]  # white on black uint8; labels 7 2 1 0 4 1 4 9 5 9
SEVEN, TWO, ONE = DIGITS[0], DIGITS[1], DIGITS[2]


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(pixels: np.ndarray) -> bytes:
    return encode(Image.fromarray(pixels))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def shifted_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation over shifts of up to one pixel: centring rounds to whole pixels, so a
    re-encoded digit may land one pixel over, as MNIST digits themselves do."""
    return max(correlation(np.roll(a, (dr, dc), axis=(0, 1)), b) for dr in (-1, 0, 1) for dc in (-1, 0, 1))


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    return float((rows * a).sum() / a.sum()), float((cols * a).sum() / a.sum())


def box_size(a: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(a > 0.05)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def assert_mnist_like(a: np.ndarray) -> None:
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1


def upscaled(digit: np.ndarray, side: int) -> np.ndarray:
    """The digit's 28x28 field enlarged with smoothing, as 0..1 ink."""
    image = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(image, np.float32) / 255


def on_paper(
    digit: np.ndarray,
    *,
    size: tuple[int, int] = (280, 280),
    at: tuple[int, int] = (0, 0),
    side: int = 280,
    paper: float = 255,
    ink: float = 0,
) -> np.ndarray:
    """Dark ink on paper: an L image of `size` (width, height) with the digit at `at` (left, top)."""
    share = np.zeros((size[1], size[0]), np.float32)
    share[at[1] : at[1] + side, at[0] : at[0] + side] = upscaled(digit, side)
    return np.clip(paper * (1 - share) + ink * share, 0, 255).astype(np.uint8)
