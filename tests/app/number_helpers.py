"""Numbers written for the segmentation and reading tests (tests/app/test_segment.py,
tests/app/test_segment_strays.py, tests/app/test_read.py, tests/app/test_line_reading.py,
tests/e2e/test_read.py, tests/e2e/test_read_frames.py): MNIST test digits scaled and placed on white paper,
where each was drawn, and probabilities made up to favour the candidates at given boxes."""

from __future__ import annotations

import cv2
import numpy as np

from app.imaging.segment import Segmented
from tests.conftest import FIXTURE_MNIST

with np.load(FIXTURE_MNIST) as _data:
    DIGITS, LABELS = _data["x_test"], _data["y_test"]


def ink_of(index: int, height: int) -> np.ndarray:
    """MNIST test digit `index` cropped to its ink and scaled to `height` pixels, 0..1."""
    digit = DIGITS[index]
    rows, cols = np.nonzero(digit > 40)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32) / 255
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return np.clip(cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)


def page(placed: list[tuple[np.ndarray, int, int]], size: tuple[int, int] = (200, 600)) -> np.ndarray:
    """Dark ink on white paper: each (ink, x, y) drawn with its top-left corner at (x, y)."""
    ink = np.zeros(size, np.float32)
    for piece, x, y in placed:
        window = ink[y : y + piece.shape[0], x : x + piece.shape[1]]
        np.maximum(window, piece, out=window)
    return np.round(255 * (1 - 0.9 * ink)).astype(np.uint8)


def boxes_of(placed: list[tuple[np.ndarray, int, int]]) -> list[tuple[int, int, int, int]]:
    out = []
    for piece, x, y in placed:
        rows, cols = np.nonzero(piece > 0.3)
        out.append((x + cols.min(), y + rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1))
    return out


def near(box: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 5) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected))


def sure_of(segmented: Segmented, expected: list[tuple[int, int, int, int]], digits: str) -> np.ndarray:
    """Probabilities that favour the candidates drawn at the expected boxes, as the expected digits."""
    probabilities = np.full((len(segmented.candidates), 10), 0.4 / 9, np.float32)
    probabilities[:, 0] = 0.6
    for index, candidate in enumerate(segmented.candidates):
        for box, digit in zip(expected, digits):
            if near(candidate.box, box):
                probabilities[index] = 0.01 / 9
                probabilities[index, int(digit)] = 0.99
    return probabilities


def whole_boxes(segmented: Segmented) -> list[tuple[int, int, int, int]]:
    """The box of each cluster's candidate taken whole, left to right."""
    return [segmented.candidates[c.parts[(0, c.points - 1)][-1]].box for c in segmented.clusters]


def touching(first: int, second: int, height: int = 100) -> tuple[np.ndarray, list[tuple[np.ndarray, int, int]]]:
    """Test digits `first` and `second` side by side, the second moved left until their inks overlap a little."""
    left, right = ink_of(first, height), ink_of(second, height)
    x_right = 40 + left.shape[1] - 2
    solid = page([(left, 40, 50)]) < 128
    for shift in range(left.shape[1]):
        if (solid & (page([(right, x_right - shift, 50)]) < 128)).sum() >= 6:
            x_right -= shift
            break
    placed = [(left, 40, 50), (right, x_right, 50)]
    return page(placed), placed


def in_a_row(
    indices: list[int], height: int = 84, gap: int = 14
) -> tuple[np.ndarray, list[tuple[np.ndarray, int, int]]]:
    """Test digits `indices` side by side on one baseline, `gap` pixels apart, on white paper."""
    placed, x = [], 20
    for index in indices:
        ink = ink_of(index, height)
        placed.append((ink, x, 30))
        x += ink.shape[1] + gap
    return page(placed, (height + 60, x + 20)), placed


def cropped_to_ink(gray: np.ndarray, margin: int) -> tuple[np.ndarray, tuple[int, int]]:
    """`gray` cropped to its ink and `margin` pixels of paper (as a crop tool cuts it), and the crop's (x, y)."""
    rows, cols = np.nonzero(gray < 200)
    top, left = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
    return gray[top : rows.max() + margin + 1, left : cols.max() + margin + 1], (left, top)


def whole_frame(
    number: list[int],
    seed: int,
    height: int,
    size: tuple[int, int] = (2268, 3024),
    rules: int = 0,
    squares: int = 0,
    low: bool = False,
    faint: bool = False,
    stain: float = 0.0,
) -> tuple[bytes, tuple]:
    """A phone camera's whole frame (JPEG, `size` as (height, width)) of a sheet with test digits `number` written
    `height` pixels tall somewhere on it: blotchy paper (its texture and uneven light, 2% either way over 40-pixel
    blots), lit brighter to the right, camera noise; and where each digit was drawn (`boxes_of`'s boxes). `rules`:
    notebook paper, its printed rules (grey, 5 pixels thick) that many pixels apart. `squares`: squared paper, its grid's
    lines (grey, 3 pixels thick, leaning a little as a photo's perspective leaves them) that many pixels apart. `low`:
    the number written at the sheet's lower edge, as low as the frame (its last 1%). `faint`: the rules faint (grey 225,
    2 pixels thick) and at a degree's tilt, so that only parts of them stand out as ink. `stain`: a stain (a drop of tea,
    a smudge) as large as a digit in line after the number, a digit's width from it, taking that share of the light, its
    edge soft; the frame then blurred a little (a phone's focus), which lowers its noise below the stain's."""
    rng = np.random.default_rng(seed)
    gray, placed = in_a_row(number, height=height, gap=height // 3)
    h, w = size
    small = cv2.GaussianBlur(rng.normal(0, 1, (h // 8, w // 8)).astype(np.float32), (0, 0), 5)
    blots = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    light = (0.8 + 0.15 * np.arange(w, dtype=np.float32)[None, :] / w) * (1 + 0.02 * blots / blots.std())
    sheet = np.full((h, w), 255, np.uint8)
    for row in range(int(rng.integers(0, rules)), h, rules) if rules else ():
        cv2.line(sheet, (0, row), (w - 1, row + (40 if faint else 6)), 225 if faint else 150, 2 if faint else 5)
    for step in range(int(rng.integers(0, squares)), max(h, w), squares) if squares else ():
        cv2.line(sheet, (0, step), (w - 1, step + 9), 175, 3)
        cv2.line(sheet, (step, 0), (step - 7, h - 1), 175, 3)
    y, x = int(rng.integers(300, h - 300 - gray.shape[0])), int(rng.integers(300, w - 300 - gray.shape[1]))
    y = h - gray.shape[0] - h // 100 if low else y
    window = sheet[y : y + gray.shape[0], x : x + gray.shape[1]]
    np.minimum(window, gray, out=window)
    if stain:
        centre = (x + gray.shape[1] + height, y + gray.shape[0] // 2)
        spot = cv2.ellipse(np.zeros((h, w), np.float32), centre, (height // 3, height // 2), 0, 0, 360, 1.0, -1)
        light *= 1 - stain * cv2.GaussianBlur(spot, (0, 0), height / 10)
    frame = 225 / 255 * sheet * light + rng.normal(0, 3, (h, w)).astype(np.float32)
    frame = cv2.GaussianBlur(frame, (0, 0), 1.2) if stain else frame
    ok, data = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes(), [(ink, px + x, py + y) for ink, px, py in placed]


def sheet_on_a_desk(
    number: list[int],
    seed: int,
    height: int,
    size: tuple[int, int] = (2268, 3024),
    shadow: float = 0.0,
    desk: float = 40,
) -> bytes:
    """A phone camera's whole frame (JPEG, `size` as (height, width)) of a sheet lying on a desk (`desk`: its grey
    level; the paper's is 195-218), turned up to 8 degrees, the desk all round it (the sheet half the frame), with test
    digits `number` written `height` pixels tall on the sheet; lit brighter to the right, camera noise. With `shadow`, a
    soft shadow (a hand, the phone) across half the frame, through its middle third at any angle, takes that share of
    the light, its edge softened over 3-9% of the frame."""
    rng = np.random.default_rng(seed)
    gray = in_a_row(number, height=height, gap=height // 3)[0]
    h, w = size
    sheet_h, sheet_w = int(h * rng.uniform(0.6, 0.75)), int(w * rng.uniform(0.6, 0.75))
    sheet = np.full((sheet_h, sheet_w), 255, np.uint8)
    y, x = int(rng.integers(80, sheet_h - 80 - gray.shape[0])), int(rng.integers(80, sheet_w - 80 - gray.shape[1]))
    sheet[y : y + gray.shape[0], x : x + gray.shape[1]] = gray
    turn = cv2.getRotationMatrix2D((sheet_w / 2, sheet_h / 2), float(rng.uniform(-8, 8)), 1.0)
    turn[:, 2] += ((w - sheet_w) / 2 + rng.uniform(-0.08, 0.08) * w, (h - sheet_h) / 2 + rng.uniform(-0.08, 0.08) * h)
    on_sheet = cv2.warpAffine(np.ones((sheet_h, sheet_w), np.float32), turn, (w, h)) > 0.5
    paper = cv2.warpAffine(sheet.astype(np.float32), turn, (w, h))
    grain = desk + 8 * cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6)
    light = 0.85 + 0.1 * np.arange(w, dtype=np.float32)[None, :] / w
    shade = shadow_across((h, w), rng, shadow) if shadow else np.float32(1)
    frame = np.where(on_sheet, 0.9 * paper * light, grain) * shade + rng.normal(0, 3, (h, w)).astype(np.float32)
    ok, data = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def shadow_across(shape: tuple[int, int], rng: np.random.Generator, depth: float) -> np.ndarray:
    """The light a soft shadow (a hand, the phone) leaves across half a frame of `shape` (height, width): a half-plane
    through the frame's middle third at any angle, taking `depth` of the light, its edge softened over 3-9% of it."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    distance = np.cos(angle) * (cols / w - 0.5) + np.sin(angle) * (rows / h - 0.5) - rng.uniform(-0.15, 0.15)
    light: np.ndarray = 1 - depth / (1 + np.exp(-distance / rng.uniform(0.03, 0.09)))
    return light


def at_a_tilt(
    number: list[int],
    seed: int,
    degrees: float,
    height: int = 70,
    size: tuple[int, int] = (900, 1200),
    rules: int = 0,
    squares: int = 0,
) -> tuple[bytes, list[tuple[float, float]]]:
    """A phone photo (JPEG, `size` as (height, width)) of test digits `number` written on one line at `degrees`
    (anticlockwise as shown: its right end higher), as a phone held at a slant or a sheet turned on a desk takes it:
    paper lit brighter to one side, camera noise; and where each digit's centre is in it. `rules`: notebook paper, its
    printed rules (grey, 4 pixels thick) that many pixels apart; `squares`: squared paper, its grid (grey, 2 pixels
    thick) that many pixels apart; the sheet's lines turned with the writing, out to the frame's corners."""
    rng = np.random.default_rng(seed)
    gray, placed = in_a_row(number, height=height, gap=height // 4)
    h, w = size
    pad = (h + w) // 2 if rules or squares else 0  # the lines reach past the frame's corners however it is turned
    sheet = np.full((h + 2 * pad, w + 2 * pad), 255, np.uint8)
    for row in range(int(rng.integers(0, rules)), sheet.shape[0], rules) if rules else ():
        cv2.line(sheet, (0, row), (sheet.shape[1] - 1, row), 150, 4)
    for step in range(int(rng.integers(0, squares)), max(sheet.shape), squares) if squares else ():
        cv2.line(sheet, (0, step), (sheet.shape[1] - 1, step), 175, 2)
        cv2.line(sheet, (step, 0), (step, sheet.shape[0] - 1), 175, 2)
    y, x = (h - gray.shape[0]) // 2, (w - gray.shape[1]) // 2
    window = sheet[pad + y : pad + y + gray.shape[0], pad + x : pad + x + gray.shape[1]]
    np.minimum(window, gray, out=window)
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    around = cv2.getRotationMatrix2D((w / 2 + pad, h / 2 + pad), degrees, 1.0)
    sheet = cv2.warpAffine(sheet, around, sheet.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=255)
    sheet = sheet[pad : pad + h, pad : pad + w]
    light = 0.75 + 0.2 * np.linspace(0, 1, w, dtype=np.float32)[None, :]
    frame = 235 / 255 * sheet * light + rng.normal(0, 3, (h, w)).astype(np.float32)
    ok, data = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    centres = [(x + px + ink.shape[1] / 2, y + py + ink.shape[0] / 2) for ink, px, py in placed]
    return data.tobytes(), [tuple(turn @ np.array([cx, cy, 1.0])) for cx, cy in centres]
