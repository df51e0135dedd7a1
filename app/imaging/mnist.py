"""What MNIST looks like: 28x28 float32 in 0..1, white digit on black, fitted into a 20x20 box and
centred by centre of mass (LeCun et al.'s construction)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from app.imaging.ink import MIN_CONTRAST

SIDE = 28
BOX = 20  # MNIST digits fit a 20x20 box inside the 28x28 field
CENTRE = 14  # where MNIST puts the centre of mass (row and column index, measured on the data set)
CORE_SHARE = 0.3  # ink at least this strong (of the stretched 1.0) makes the digit's extent


def mnist_like(gray: np.ndarray) -> bool:
    """28x28, an all-black outer ring of pixels, and ink bright enough to count."""
    return (
        gray.shape == (SIDE, SIDE)
        and not gray[0].any()
        and not gray[-1].any()
        and not gray[:, 0].any()
        and not gray[:, -1].any()
        and float(gray.max()) >= MIN_CONTRAST
    )


def _ink_box(ink: np.ndarray) -> tuple[slice, slice]:
    """The box of the solid strokes widened by one output pixel's worth of fringe. Fainter ink
    further out (JPEG ringing, smudges, shadows) would otherwise shrink the digit."""
    core = ink >= CORE_SHARE
    rows, cols = np.flatnonzero(core.any(axis=1)), np.flatnonzero(core.any(axis=0))
    margin = max(1, round((max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1) / BOX))
    top, left = max(int(rows[0]) - margin, 0), max(int(cols[0]) - margin, 0)
    window = ink[top : rows[-1] + margin + 1, left : cols[-1] + margin + 1]
    inked_rows, inked_cols = np.nonzero(window.any(axis=1))[0], np.nonzero(window.any(axis=0))[0]
    return (
        slice(top + inked_rows[0], top + inked_rows[-1] + 1),
        slice(left + inked_cols[0], left + inked_cols[-1] + 1),
    )


def fit_and_centre(ink: np.ndarray) -> np.ndarray:
    digit = ink[_ink_box(ink)].astype(np.float32)
    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):  # already 20 pixels on its longer side (an MNIST digit): Pillow would copy it
        fitted = digit
    else:
        fitted = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.LANCZOS))
        fitted = np.clip(fitted, 0, 1)  # Lanczos rings below 0 and above 1
    fitted = fitted / max(float(fitted.max()), 1e-6)  # thin strokes dim when shrunk; MNIST strokes peak at 1
    mass = float(fitted.sum())
    top = round(CENTRE - float(fitted.sum(axis=1) @ np.arange(size[1])) / mass)
    left = round(CENTRE - float(fitted.sum(axis=0) @ np.arange(size[0])) / mass)
    top = min(max(top, 0), SIDE - size[1])  # keep the whole digit in the field
    left = min(max(left, 0), SIDE - size[0])
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + size[1], left : left + size[0]] = fitted
    return out


def to_png(array: np.ndarray) -> bytes:
    """A (28, 28) 0..1 array as a grayscale PNG: the image the model actually saw."""
    pixels = np.round(np.clip(np.asarray(array, np.float64), 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
