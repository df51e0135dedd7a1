"""One digit prepared as MNIST's (app/imaging): ink from paper, canvases and phone photos, fitted into
20x20 and centred by its mass."""

from __future__ import annotations

import importlib
import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.imaging import NoDigit, preprocess_image
from app.imaging.photo import paper_ink, work_frame
from tests.app.imaging_helpers import (
    DIGITS,
    SEVEN,
    TWO,
    assert_mnist_like,
    box_size,
    centre_of_mass,
    correlation,
    encode,
    on_paper,
    png,
    shifted_correlation,
    upscaled,
)
from tests.app.number_helpers import in_a_row
from tests.conftest import REPO_ROOT

# ---- images that already look like MNIST -------------------------------------------------------


@pytest.mark.parametrize("index", [pytest.param(i, id=f"test-digit-{i}") for i in range(5)])
def test_mnist_png_comes_back_nearly_unchanged(index: int) -> None:
    digit = DIGITS[index]
    out = preprocess_image(png(digit))
    assert_mnist_like(out)
    assert correlation(out, digit / 255) > 0.999
    assert np.abs(out - digit / 255).max() < 0.02
    rows, cols = centre_of_mass(out)
    assert abs(rows - 14) <= 1 and abs(cols - 14) <= 1


def test_dark_ink_on_white_paper_is_inverted() -> None:
    out = preprocess_image(png(255 - SEVEN))
    assert np.abs(out - SEVEN / 255).max() < 0.02


@pytest.mark.parametrize(
    ("paper", "ink"),
    [
        pytest.param(180, 30, id="grey-paper-dark-ink"),
        pytest.param(230, 120, id="white-paper-pencil"),
        pytest.param(230, 170, id="faint-pencil"),
        pytest.param(40, 200, id="chalk-on-blackboard"),
    ],
)
def test_paper_level_is_removed(paper: int, ink: int) -> None:
    out = preprocess_image(png(on_paper(SEVEN, paper=paper, ink=ink)))
    reference = preprocess_image(png(SEVEN))
    assert out[:, :3].max() == 0 and out[:, -3:].max() == 0  # the paper is black, not grey
    assert out.max() == pytest.approx(1.0)
    assert correlation(out, reference) > 0.95


def test_lighting_gradient_and_noise_leave_a_clean_background() -> None:
    rng = np.random.default_rng(7)
    gradient = np.linspace(150, 225, 300)[None, :]
    share = np.zeros((240, 300), np.float32)
    share[40:200, 90:250] = upscaled(TWO, 160)
    photo = gradient * (1 - share) + 35 * share + rng.normal(0, 8, share.shape)
    out = preprocess_image(encode(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), "JPEG", quality=70))
    reference = preprocess_image(png(TWO))
    assert correlation(out, reference) > 0.9
    assert (out[reference == 0] > 0.2).mean() < 0.02  # no speckle where the digit is not


def test_thin_pen_strokes_reach_full_intensity() -> None:
    # A 3 px line shrunk 15x would peak near 0.3; MNIST strokes peak at 1.0 and the model expects that.
    image = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(image).line([(80, 60), (320, 60), (180, 350)], fill=0, width=3)
    out = preprocess_image(encode(image))
    assert out.max() == pytest.approx(1.0)
    assert max(box_size(out)) == 20


def test_faint_smudge_does_not_shrink_the_digit() -> None:
    share = np.zeros((300, 300), np.float32)
    share[20:220, 20:220] = upscaled(TWO, 200)
    clean = preprocess_image(png((255 * (1 - share)).astype(np.uint8)))
    share[235:265, 235:275] = 0.2  # a pencil smudge away from the digit (and off the border)
    out = preprocess_image(png((255 * (1 - share)).astype(np.uint8)))
    rows, cols = np.nonzero(out > 0.3)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 >= 18  # fitted with the smudge, the 2 would be 15 px tall
    assert correlation(out, clean) > 0.98


# ---- browser canvas exports: ink is in the alpha channel -----------------------------------------


@pytest.mark.parametrize(
    "colour",
    [
        pytest.param((0, 0, 0), id="black-strokes"),
        pytest.param((255, 255, 255), id="white-strokes"),
        pytest.param((30, 60, 200), id="blue-strokes"),
    ],
)
def test_transparent_canvas_strokes_become_white_ink(colour: tuple[int, int, int]) -> None:
    alpha = (upscaled(SEVEN, 200) * 255).astype(np.uint8)
    canvas = np.zeros((280, 280, 4), np.uint8)  # transparent black, as canvas.toBlob() writes it
    canvas[50:250, 20:220, :3] = colour
    canvas[50:250, 20:220, 3] = alpha
    out = preprocess_image(png(canvas))
    reference = preprocess_image(png(SEVEN))
    assert out[0].max() == 0 and out[-1].max() == 0
    assert out.max() == pytest.approx(1.0)
    assert correlation(out, reference) > 0.9


def test_transparent_palette_image_uses_its_transparency() -> None:
    image = Image.fromarray((SEVEN > 127).astype(np.uint8), mode=None).convert("P")
    image.putpalette([0, 0, 0, 0, 0, 0])  # both entries black: only transparency tells them apart
    data = encode(image, transparency=0)
    out = preprocess_image(data)
    assert correlation(out, preprocess_image(png(np.where(SEVEN > 127, 255, 0).astype(np.uint8)))) > 0.99


# ---- geometry: fit into 20x20, centre of mass at the centre --------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        pytest.param((10, 10), id="top-left"),
        pytest.param((300, 200), id="bottom-right"),
        pytest.param((180, 20), id="top-right"),
    ],
)
def test_off_centre_digit_in_big_canvas_is_centred_and_fitted(at: tuple[int, int]) -> None:
    out = preprocess_image(png(on_paper(TWO, size=(480, 360), at=at, side=150)))
    rows, cols = centre_of_mass(out)
    assert abs(rows - 14) <= 1 and abs(cols - 14) <= 1
    assert max(box_size(out)) in (19, 20, 21)


@pytest.mark.parametrize(
    ("bar", "expected"),
    [
        pytest.param((slice(50, 250), slice(140, 152)), "tall", id="tall-thin-one"),
        pytest.param((slice(140, 152), slice(30, 270)), "wide", id="wide-dash"),
    ],
)
def test_aspect_ratio_is_kept(bar: tuple[slice, slice], expected: str) -> None:
    pixels = np.full((300, 300), 255, np.uint8)
    pixels[bar] = 0
    height, width = box_size(preprocess_image(png(pixels)))
    long_side, short_side = (height, width) if expected == "tall" else (width, height)
    assert long_side == 20
    assert 1 <= short_side <= 3  # 12:200 of 20 px is ~1 px, not stretched into a square


# ---- nothing to see -------------------------------------------------------------------------------


def _noisy_blank_paper() -> bytes:
    noise = np.random.default_rng(5).normal(0, 3, (200, 200))
    return encode(Image.fromarray(np.clip(200 + noise, 0, 255).astype(np.uint8)), "JPEG", quality=70)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png(np.array([[255]], np.uint8)), id="1x1-white"),
        pytest.param(png(np.array([[0]], np.uint8)), id="1x1-black"),
        pytest.param(png(np.full((50, 80), 128, np.uint8)), id="uniform-grey"),
        pytest.param(png(np.zeros((280, 280, 4), np.uint8)), id="empty-transparent-canvas"),
        pytest.param(_noisy_blank_paper(), id="photo-of-blank-paper"),
    ],
)
def test_a_blank_image_holds_no_digit(data: bytes) -> None:
    with pytest.raises(NoDigit) as caught:
        preprocess_image(data)
    assert caught.value.reason == "no_ink"


# ---- phone photos of paper (app/imaging/photo.py) ---------------------------------------------------


def _photo_of_paper(digit: np.ndarray | None, *, lines: str, shadow: bool, seed: int = 0) -> bytes:
    """Pencil on ruled or squared paper: only moderately darker than the paper, a soft shadow over
    the left part, a lighting gradient, noise and JPEG at quality 60, the digit off-centre."""
    rng = np.random.default_rng(seed)
    height, width = 480, 360
    paper = np.ones((height, width), np.float32)
    if lines != "plain":
        for y in range(17, height, 34):
            paper[y : y + 2] *= 0.72  # printed rules, a little lighter than the pencil
        if lines == "grid":
            for x in range(11, width, 34):
                paper[:, x : x + 2] *= 0.72
    share = np.zeros((height, width), np.float32)
    if digit is not None:
        share[150:350, 150:350] = upscaled(digit, 200)
        share = (share > 0.5) * 0.55  # solid pencil strokes, absorbing 55% of the light
    cols = np.arange(width)[None, :] / width
    light = 0.75 + 0.25 * cols  # brighter to the right
    if shadow:
        light = light * (1 - 0.4 / (1 + np.exp((cols - 0.3) / 0.05)))  # a soft shadow over the left third
    gray = 230 * paper * (1 - share) * light + rng.normal(0, 4, (height, width))
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)), "JPEG", quality=60)


@pytest.mark.parametrize(
    ("lines", "shadow"),
    [
        pytest.param("plain", True, id="plain-paper-shadow"),
        pytest.param("ruled", False, id="ruled-paper"),
        pytest.param("grid", True, id="squared-paper-shadow"),
    ],
)
@pytest.mark.parametrize("index", [pytest.param(0, id="seven"), pytest.param(1, id="two")])
def test_a_photo_of_a_digit_on_paper_gives_the_digit_without_lines_or_shadow(
    lines: str, shadow: bool, index: int
) -> None:
    out = preprocess_image(_photo_of_paper(DIGITS[index], lines=lines, shadow=shadow))
    reference = preprocess_image(png(DIGITS[index]))
    assert_mnist_like(out)
    assert shifted_correlation(out, reference) > 0.75
    # Nothing of the printed lines or the shadow is left: no ink where the digit is not.
    assert (out[reference == 0] > 0.3).mean() < 0.05


def _number_on_a_sheet(number: list[int], seed: int, height: int) -> tuple[bytes, np.ndarray]:
    """A phone camera's whole frame (2400x1800) of a sheet with a small number on it: blotchy paper (its texture and
    uneven light, 4% either way over 40-pixel blots), lit brighter to the right, camera noise, JPEG; and where its
    strokes are."""
    rng = np.random.default_rng(seed)
    gray = in_a_row(number, height=height, gap=height // 3)[0].astype(np.float32) / 255
    h, w = 1800, 2400
    blots = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 40)
    light = (0.8 + 0.15 * np.arange(w)[None, :] / w) * (1 + 0.04 * blots / blots.std())
    ink = np.ones((h, w), np.float32)
    y, x = int(rng.integers(100, h - 300)), int(rng.integers(100, w - gray.shape[1] - 100))
    ink[y : y + gray.shape[0], x : x + gray.shape[1]] = gray
    page = np.clip(225 * ink * light + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(page), "JPEG", quality=85), ink < 0.5


@pytest.mark.parametrize("height", [48, 72])
def test_a_small_number_on_a_whole_sheet_is_found_as_dark_ink(height: int) -> None:
    # An outside check's phone frames (2000-4032 px, the number 5-40% of their width): the ink's polarity was decided
    # by the strength of the frame's dark and light features at their 99.5th percentile, and a number's strokes are
    # under 0.5% of such a frame: the paper's light blots won, and the paper round the digits was taken for chalk on
    # a board (192 of its 725 images; 11 of these 20 sheets).
    for seed in range(10):
        data, strokes = _number_on_a_sheet([seed * 7 + j * 5 for j in range(2 + seed % 4)], seed, height)
        frame = work_frame(np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32) / 255)
        mask = paper_ink(frame, number=True).mask > 0
        size = (frame.shape[1], frame.shape[0])
        inked = cv2.resize(strokes.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        assert (mask & inked).sum() >= 0.9 * inked.sum(), seed


@pytest.mark.parametrize("lines", ["plain", "ruled", "grid"])
def test_a_photo_of_blank_paper_holds_no_digit(lines: str) -> None:
    with pytest.raises(NoDigit):
        preprocess_image(_photo_of_paper(None, lines=lines, shadow=True))


def test_photo_path_is_taken_only_by_photos() -> None:
    from app.imaging.digit import prepare

    assert prepare(png(SEVEN)).path == "mnist"
    assert prepare(png(on_paper(SEVEN, size=(300, 300), at=(50, 50), side=200))).path == "clean"
    assert prepare(_photo_of_paper(SEVEN, lines="ruled", shadow=False)).path == "photo"


def test_thick_strokes_on_grey_paper_stay_dark_ink(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/renderings.py's light photos: MNIST's thick brush, dark on grey paper. The dark and light features'
    strengths may tie, and the holes of a digit's loops are thinner than its strokes: with the thinner always
    winning a tie (within 10%), 8 of these 100 were taken for light ink on dark paper. A tie goes to the
    thinner only when it is 1.5 times thinner (app.imaging.photo._dark_ink)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "bench"))
    renderings = importlib.import_module("renderings")
    taken_for_light = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        for digit in DIGITS:
            photo = Image.open(io.BytesIO(renderings.render_light_photo(digit, rng))).convert("L")
            frame = work_frame(np.asarray(photo, np.float32) / 255)
            found = paper_ink(frame)
            taken_for_light += found.reason is not None or np.median(frame[found.mask > 0]) > np.median(frame)
    assert taken_for_light == 0, taken_for_light
