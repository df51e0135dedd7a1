"""Ink of clean images (digital drawings, canvas exports, scans, light photos): the paper's level and a
linear lighting gradient fitted to the border and removed, a noise floor, specks dropped."""

from __future__ import annotations

import numpy as np

MIN_CONTRAST = 0.08  # ink fainter than ~20/255 above the paper is treated as a blank image
NOISE_SIGMAS = 4.0  # paper noise up to this many standard deviations is not ink
LOSSY_FLOOR = 0.15  # of the peak: JPEG ringing reaches ~12% of the stroke contrast at quality 70
# Of the border: digital images whose digit's soft edge reached into it took the photo path, which read a thick 1 as
# its stroke's outline (the second outside check's 9-13%-margin images: 713 -> 728 of 750 read right).
FLAT_SHARE = 0.9
SPECK_FRACTION = 0.1  # isolated bits below this share of the peak vanish after a 3x3 blur


def clean_ink(gray: np.ndarray, *, lossy: bool) -> np.ndarray | None:
    """Ink intensity in 0..1 (1 = darkest stroke) with the paper at 0, or None for a blank image."""
    frame = _frame(gray.shape)
    paper = float(np.median(gray[frame]))
    smooth = _box3(gray)
    # Ink is whatever strays furthest from the paper: below it means dark ink on light paper.
    dark_ink = paper - float(smooth.min()) > float(smooth.max()) - paper
    background, sigma = _background(1 - gray if dark_ink else gray, frame)
    above = (1 - gray if dark_ink else gray) - background
    if dark_ink:
        # Paper reflects light and ink absorbs a share of it: measure ink against the local paper
        # brightness, so strokes under the dim side of a lighting gradient weigh as much as the rest.
        paper_level = np.clip(1 - background, MIN_CONTRAST, None)
        above, sigma = above / paper_level, sigma / float(np.median(paper_level))
    peak = float(_box3(above).max())
    if peak < MIN_CONTRAST:
        return None
    # Lossy codecs ring around strokes even where the border is clean; lossless files are taken
    # at their word, so MNIST PNGs pass unchanged.
    floor = max(NOISE_SIGMAS * sigma, LOSSY_FLOOR * peak if lossy else 0.0)
    ink = np.clip(above - floor, 0, None)
    # Drop specks: lone noise pixels fade under a 3x3 blur, strokes (even 1 px wide) keep a third.
    ink *= _box3((_box3(ink) > SPECK_FRACTION * peak).astype(np.float32)) > 0
    top = float(ink.max())
    # Stretch so the strongest stroke reaches 1.0, as in MNIST (lone hot pixels are gone by now).
    return ink / top if top > 0 else None


def _frame(shape: tuple[int, int]) -> np.ndarray:
    """The border strip where the paper shows: ~6% of the shorter side, at least one pixel."""
    height, width = shape
    band = max(1, min(height, width) // 16)
    mask = np.ones(shape, bool)
    mask[band : height - band, band : width - band] = False
    return mask


def _background(gray: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray | np.float64, float]:
    """A plane fitted to the border (lighting gradients are near linear) and the paper's noise.

    Refitted once without the pixels well above it: ink that touches the border is not paper."""
    border = gray[frame]
    if border.min() == border.max():  # clean digital paper (MNIST files, canvas exports): nothing to fit
        return np.float64(border[0]), 0.0
    height, width = gray.shape
    rows, cols = np.nonzero(frame)
    design = np.column_stack([np.ones(rows.size), rows / height, cols / width])
    values = gray[frame].astype(np.float64)
    keep = np.ones(values.size, bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        residual = values - design @ coef
        spread = residual[keep] - np.median(residual[keep])
        sigma = 1.4826 * float(np.median(np.abs(spread)))  # MAD: robust to the ink it still sees
        keep = residual <= 3 * sigma + 1 / 255
    grid_rows, grid_cols = np.mgrid[0:height, 0:width]
    return coef[0] + coef[1] * grid_rows / height + coef[2] * grid_cols / width, sigma


def _box3(values: np.ndarray) -> np.ndarray:
    """3x3 mean with edge padding, as two separable passes (this runs several times per image)."""
    padded = np.concatenate([values[:1], values, values[-1:]])  # edge padding; np.pad costs 5x more
    padded = np.concatenate([padded[:, :1], padded, padded[:, -1:]], axis=1)
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    mean: np.ndarray = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9
    return mean


def flat_border(gray: np.ndarray) -> bool:
    """A digital image: its border is one exact colour (a drawing program's or canvas's paper, MNIST), but for
    FLAT_SHARE's rest (a digit's soft edge close to the image's edge). Photos and scans have noise everywhere."""
    border = gray[_frame(gray.shape)]
    _, counts = np.unique(border, return_counts=True)
    return bool(counts.max() >= FLAT_SHARE * border.size)
