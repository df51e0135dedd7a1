"""A number photographed at a tilt, levelled (`tilt`, `turned`; for app.imaging.number_ink): the angle of the writing's
line found from its ink's projection profile, the standard deskew of OCR (rows of ink counted along each candidate
angle; the line is level where its ink falls into the fewest rows, the sum of squared row counts at its highest), and
the ink turned by it so that the line is level before its pieces are grouped (app.imaging.clusters takes marks off a
level line for marks off the number)."""

from __future__ import annotations

import math

import cv2
import numpy as np

MAX_TILT = 40.0  # degrees either way: the angles searched (a phone held at a slant, a sheet turned on a desk)
COARSE, FINE = 2.0, 0.5  # degrees between the angles searched, then round the best
MIN_TILT = 5.0  # degrees: a line tilted less reads as it is (a wavy baseline, a blotchy frame's dirt in a row: turning
# small writing a few degrees blurs it, and an e2e whole frame's "73", levelled by 3.5 degrees, read "0")
GAIN = 1.3  # ... and the profile at the angle found this many times sharper than level
LONG = 2.5  # ... and the ink this many times longer along the line than across it (a line; a digit or two is not)
# ... and not at the end of the angles searched: a lone digit's profile grows sharper the further it is turned
PIECES = 3  # ... and at least this many pieces of ink that count (SIGNIFICANT of the largest's pixels): a 1 slanted
SIGNIFICANT = 0.15  # hard beside a 3 makes a long tilted line of two digits ("13" turned level read "23") ...
LONG_ALONE = 3.5  # ... or ink this many times longer than across it, however many pieces (digits that touch)
POINTS = 40_000  # ink pixels counted at most (a stride through them)


def tilt(mask: np.ndarray) -> float:
    """The writing's angle in degrees (clockwise as shown: its right end lower), or 0.0 when it is level or its angle
    is not clear. When the ink is at an angle but spread across the frame rather than long along it (what is left of a
    turned page's lines at its corners: "1700135" on ruled paper at 20 degrees read "700135"), or its profile is not
    sharp (specks all over a blotchy photo), the angle of the group of pieces holding the most ink (`_writing`), if
    that is sharp and long."""
    angle, gain, long = estimate(mask)
    if not MIN_TILT <= abs(angle) < MAX_TILT:
        return 0.0
    if gain < GAIN or long < LONG:
        writing = _writing(mask)
        if writing is None:
            return 0.0
        mask = writing
        angle, gain, long = estimate(mask)
        if not (MIN_TILT <= abs(angle) < MAX_TILT and gain >= GAIN and long >= LONG):
            return 0.0
    if long >= LONG_ALONE:
        return angle
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    return angle if int((area >= SIGNIFICANT * area.max()).sum()) >= PIECES else 0.0


def _writing(mask: np.ndarray) -> np.ndarray | None:
    """The group of pieces holding the most ink, pieces that count (SIGNIFICANT of the largest's pixels) within their
    median height of each other grouped: the writing, marks far off it (a turned page's line ends at the frame's
    corners) left out. With a digit or two, the line ends may hold more: their angle is the page's, which the writing
    shares. One group is the writing too, with the specks left out: a squared page's grid taken out to the frame's
    corners but for dashes there, each too small to count, spread the ink so that the writing did not look long, and it
    was left unlevelled ("56056284" read "05"). None when there is only one piece."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 3:
        return None
    area = stats[:, cv2.CC_STAT_AREA]
    large = area >= SIGNIFICANT * area[1:].max()
    large[0] = False
    height = float(np.median(stats[large, cv2.CC_STAT_HEIGHT]))
    pieces = large[labels].astype(np.uint8)  # specks (a squared page's crossings) left out
    side = max(3, round(height) | 1)
    near = cv2.dilate(pieces, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    groups, grouped = cv2.connectedComponents(near, connectivity=8)
    held = np.bincount(grouped[pieces > 0], minlength=groups)
    held[0] = 0
    writing: np.ndarray = ((grouped == int(np.argmax(held))) & (pieces > 0)).astype(np.uint8)
    return writing


def estimate(mask: np.ndarray) -> tuple[float, float, float]:
    """The angle at which the mask's ink falls into the fewest rows; how many times sharper its profile is there than
    level; and how many times longer its ink is along that angle than across it (the middle 90% of it each way)."""
    rows, cols = np.nonzero(mask)
    if len(rows) < 2:
        return 0.0, 1.0, 1.0
    step = max(1, len(rows) // POINTS)
    rows, cols = rows[::step].astype(np.float64), cols[::step].astype(np.float64)
    coarse = np.arange(-MAX_TILT, MAX_TILT + COARSE / 2, COARSE)
    best = float(coarse[np.argmax([_sharpness(rows, cols, a) for a in coarse])])
    fine = np.arange(max(best - COARSE, -MAX_TILT), min(best + COARSE, MAX_TILT) + FINE / 2, FINE)
    scores = [_sharpness(rows, cols, a) for a in fine]
    angle = float(fine[int(np.argmax(scores))])
    a = math.radians(angle)
    across = np.percentile(rows * math.cos(a) - cols * math.sin(a), [5, 95])
    along = np.percentile(cols * math.cos(a) + rows * math.sin(a), [5, 95])
    long = float(np.ptp(along) / max(float(np.ptp(across)), 1.0))
    return angle, max(scores) / _sharpness(rows, cols, 0.0), long


def _sharpness(rows: np.ndarray, cols: np.ndarray, degrees: float) -> float:
    """The sum of squared counts of ink pixels per row across a line at `degrees`."""
    a = math.radians(degrees)
    across = rows * math.cos(a) - cols * math.sin(a)
    counts = np.bincount(np.floor(across - across.min()).astype(np.int64))
    return float(np.dot(counts, counts))


def turned(mask: np.ndarray, ink: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A mask and its ink turned by `degrees` (anticlockwise as shown) onto a frame that holds all of them, and the 2x3
    affine map from that frame's pixels back to theirs."""
    forward, size = _forward(mask.shape[0], mask.shape[1], degrees)
    mask = cv2.warpAffine(mask, forward, size, flags=cv2.INTER_NEAREST, borderValue=0)
    ink = cv2.warpAffine(ink.astype(np.float32), forward, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    return mask, ink, cv2.invertAffineTransform(forward)


def _forward(height: int, width: int, degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    a = math.radians(degrees)
    cos, sin = abs(math.cos(a)), abs(math.sin(a))
    new_width, new_height = math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos)
    forward = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    forward[:, 2] += np.array([(new_width - width) / 2, (new_height - height) / 2])
    return forward, (new_width, new_height)
