"""A digit cut out of its page (app.imaging.margins, through preprocess_image): cut to its ink or into its strokes,
with paper put back round it; in a drawn box or on a line, whose lines are painted over."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from app.imaging import preprocess_image
from tests.app.imaging_helpers import (
    DIGITS,
    assert_mnist_like,
    encode,
    png,
    shifted_correlation,
    upscaled,
)
from tests.app.number_helpers import ink_of


@pytest.mark.parametrize("sides", [4, 3, 2])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("index", [0, 1, 3])
def test_a_digit_in_a_drawn_box_at_the_edge_is_read_as_the_digit(index: int, fmt: str, sides: int) -> None:
    # A form's cell cut out with its box, or with part of it: a black frame along the image's edges, white paper, the
    # digit inside. A rule that took a quarter of the border in one exact value for paper took the box for it, and
    # read every one a 0; paper put around a digit cut to its ink must not take the box's lines for the digit's.
    pixels = np.full((160, 111), 255, np.uint8)
    ink = upscaled(DIGITS[index], 75)
    pixels[40:115, 18:93] = np.round(255 * (1 - ink)).astype(np.uint8)
    pixels[:3], pixels[:, :3] = 0, 0
    if sides >= 3:
        pixels[-3:] = 0
    if sides == 4:
        pixels[:, -3:] = 0
    out = preprocess_image(encode(Image.fromarray(pixels), fmt, **({"quality": 85} if fmt == "JPEG" else {})))
    assert_mnist_like(out)
    assert shifted_correlation(out, preprocess_image(png(DIGITS[index]))) > 0.8


@pytest.mark.parametrize("line", [1, 2, 3])
@pytest.mark.parametrize("sides", [4, 3, 2])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("index", [0, 1, 3])
def test_a_small_digit_in_a_drawn_box_is_read_as_the_digit(index: int, fmt: str, sides: int, line: int) -> None:
    # The same cell under 64 pixels (the clean path): the box's lines were taken for the paper and the digit was no
    # digit (2 or 3 sides), or the box was read as a 0 (4 sides, lines of 2 pixels or more).
    pixels = np.full((52, 52), 255, np.uint8)
    ink = upscaled(DIGITS[index], 40)
    pixels[6:46, 6:46] = np.round(255 * (1 - ink)).astype(np.uint8)
    pixels[:line], pixels[:, :line] = 0, 0
    if sides >= 3:
        pixels[-line:] = 0
    if sides == 4:
        pixels[:, -line:] = 0
    out = preprocess_image(encode(Image.fromarray(pixels), fmt, **({"quality": 85} if fmt == "JPEG" else {})))
    assert_mnist_like(out)
    assert shifted_correlation(out, preprocess_image(png(DIGITS[index]))) > 0.8


@pytest.mark.parametrize("line", [1, 2])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("index", [0, 1, 3, 4])
def test_a_small_digit_written_on_a_line_is_read_as_the_digit(index: int, fmt: str, line: int) -> None:
    # An outside check: a digit cut out with the line it was written on along its bottom edge, 1-2 pixels thick, was
    # no_ink in 32 of 50 images (the line taken for the paper).
    pixels = np.full((48, 40), 255, np.uint8)
    pixels[2:42, :] = np.round(255 * (1 - upscaled(DIGITS[index], 40))).astype(np.uint8)
    pixels[-line:] = 0
    out = preprocess_image(encode(Image.fromarray(pixels), fmt, quality=85))
    assert_mnist_like(out)
    assert shifted_correlation(out, preprocess_image(png(DIGITS[index]))) > 0.8


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("index", [0, 17, 26, 34, 36, 41])
def test_a_sevens_bar_along_the_top_of_its_crop_is_not_taken_for_a_box(index: int, fmt: str) -> None:
    # A digit's own stroke along the edge of a tight crop (a 7's bar) is not a line from end to end: painted over as
    # a box's line, the 7 was read as a 1 (an outside check's crop).
    ink = ink_of(index, 112)
    rows, cols = np.nonzero(ink > 0.3)
    page = np.round(255 * (1 - ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])).astype(np.uint8)
    small = Image.fromarray(page).resize((18, 21), Image.Resampling.BICUBIC)
    out = preprocess_image(encode(small, fmt, quality=90))
    assert shifted_correlation(out, preprocess_image(png(np.pad(page, 30, constant_values=255)))) > 0.8


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("margin", [0, 2])
@pytest.mark.parametrize("index", range(10))
def test_a_digit_cut_to_its_ink_is_prepared_as_with_paper_around_it(index: int, margin: int, fmt: str) -> None:
    # A new user's finding: a digit cropped to its ink (a drawing program's "crop to content", 0-2 pixels of paper)
    # lost its strokes at the edges: a 0 read as a 3, a 5 prepared as a blot, a 1 as no digit.
    ink = upscaled(DIGITS[index], 112)
    rows, cols = np.nonzero(ink > 0.1)
    crop = ink[
        max(0, rows.min() - margin) : rows.max() + 1 + margin, max(0, cols.min() - margin) : cols.max() + 1 + margin
    ]
    data = encode(Image.fromarray(np.round(255 * (1 - crop)).astype(np.uint8)), fmt, quality=90)
    with_paper = preprocess_image(png(np.round(255 * (1 - ink)).astype(np.uint8)))
    assert shifted_correlation(preprocess_image(data), with_paper) > 0.9


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("height", [48, 60])
@pytest.mark.parametrize("index", range(30))
def test_a_small_digit_cut_into_its_strokes_is_prepared_as_with_paper_around_it(
    index: int, height: int, fmt: str
) -> None:
    # Under 64 pixels an image takes the clean path (icons and digit crops), which had no rule for a digit cut to its
    # ink: a bold 0 or 3 cut into its strokes' soft edge, whose strokes fill much of the frame's border, was no_ink.
    ink = ink_of(index, height)
    page = np.round(255 * (1 - 0.9 * np.pad(ink, 20))).astype(np.uint8)
    rows, cols = np.nonzero(page < 200)
    crop = page[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    out = preprocess_image(encode(Image.fromarray(crop), fmt, quality=90))
    assert shifted_correlation(out, preprocess_image(png(page))) > 0.75


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("light_on_dark", [False, True])
def test_large_bold_digits_cut_into_their_strokes_are_prepared_as_with_paper_around_them(
    light_on_dark: bool, fmt: str
) -> None:
    # An outside check: large digital digits (64-300 px) cut into their strokes' soft edge read 132 of 150 (bold 0s as
    # 6s and 3s): the photo path, which takes them (their border is not one colour), put paper back around a digit cut
    # to its ink only when paper filled half the frame's outer tenth, and a bold digit's strokes fill more of it. Now a
    # quarter is enough, as on the clean path, when it is flat within a grey level (`margins.FLAT_PAPER`: a digital
    # image's paper, not a photo's). 22-23 of each 30 were prepared so before.
    prepared_so = 0
    for index in range(30):
        ink = cv2.dilate(ink_of(index, 160), np.ones((5, 5), np.uint8))
        page = np.round(255 * (1 - 0.9 * np.pad(ink, 40))).astype(np.uint8)
        page = 255 - page if light_on_dark else page
        rows, cols = np.nonzero(np.abs(page.astype(np.int16) - page[0, 0]) > 55)  # into the strokes' soft edge
        crop = page[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        out = preprocess_image(encode(Image.fromarray(crop), fmt, quality=90))
        prepared_so += shifted_correlation(out, preprocess_image(png(page))) > 0.75
    assert prepared_so >= 28


@pytest.mark.parametrize("margin", [2, 3, 5])
@pytest.mark.parametrize("index", range(10))
def test_a_large_digit_with_a_little_paper_is_prepared_as_with_more(index: int, margin: int) -> None:
    # The outside check from the wheel: 8x digits with 2-5 pixels of paper read 112-120 of 150 with the first form of
    # the rule, which took only ink inside the edge band for a digit cut to its ink (a 0 with 3 pixels read as a blot).
    ink = upscaled(DIGITS[index], 224)
    rows, cols = np.nonzero(ink > 0.1)
    crop = np.pad(ink, margin)[rows.min() : rows.max() + 1 + 2 * margin, cols.min() : cols.max() + 1 + 2 * margin]
    with_paper = preprocess_image(png(np.round(255 * (1 - ink)).astype(np.uint8)))
    assert shifted_correlation(preprocess_image(png(np.round(255 * (1 - crop)).astype(np.uint8))), with_paper) > 0.9


@pytest.mark.parametrize("index", range(10))
def test_a_canvas_drawing_cut_to_its_ink_is_prepared_as_the_whole_canvas(index: int) -> None:
    # A drawing app's "crop to content" of a transparent canvas: the strokes reach every edge. Its alpha was composited
    # onto paper with no paper left around the strokes, and their ink at the edges was taken for paper.
    ink = upscaled(DIGITS[index], 112)
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = np.round(255 * ink).astype(np.uint8)
    rows, cols = np.nonzero(rgba[..., 3] > 127)  # cut where the strokes are solid
    crop = rgba[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    whole = preprocess_image(encode(Image.fromarray(rgba)))
    assert shifted_correlation(preprocess_image(encode(Image.fromarray(crop))), whole) > 0.85  # strokes cut at the edge
