"""Ink that is not a digit kept out of a number (app.imaging.segment): light falling off toward a photo's
edge, a stroke lying apart from every digit; and what must stay (a digit close to the edge, a short or flat
digit beside taller ones). No model: the reading's choice with probabilities made up for the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from app.imaging.edge_marks import left_out_at_edges
from app.imaging.reading import read_number
from app.imaging.segment import segment_number
from tests.app.imaging_helpers import encode, png
from tests.app.number_helpers import boxes_of, ink_of, near, page, sure_of, whole_boxes


def vignetted(placed: list[tuple[np.ndarray, int, int]], falloff: float = 0.6) -> bytes:
    """A phone photo of `page(placed)` darker toward its edges (vignetting: the corners get `falloff` less
    of the middle's light), with camera noise, as a JPEG."""
    paper = page(placed, (334, 460)).astype(np.float32) / 255
    rows, cols = np.mgrid[0 : paper.shape[0], 0 : paper.shape[1]]
    off_centre = ((cols / paper.shape[1] - 0.5) ** 2 + (rows / paper.shape[0] - 0.5) ** 2) * 2  # 1 at a corner
    light = 0.6 * (1 - falloff * off_centre)
    noise = np.random.default_rng(0).normal(0, 0.01, paper.shape)
    photo = np.clip(255 * (light * paper + noise), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(photo).convert("RGB"), "JPEG", quality=85)


def test_light_falling_off_toward_the_frame_edge_is_not_a_digit():
    # The paper's closing cannot follow the light's fall into the frame's edge, so a faint strip along it
    # looked like ink, and a tall piece of it was read as a "1" (bench/read_accuracy.py, seed 0, photos
    # "210" -> "1210" and "13" -> "113").
    placed = [(ink_of(i, 90), 120 + 110 * n, 110) for n, i in enumerate([0, 1, 2])]  # 7 2 1
    segmented = segment_number(vignetted(placed))
    assert segmented.reason is None
    found = whole_boxes(segmented)
    assert len(found) == 3 and all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), (
        found,
        boxes_of(placed),
    )


def test_a_digit_written_close_to_the_frame_edge_is_kept():
    # The strips left out along the edge are faint; a written digit there (a tight crop) is strong ink. (With
    # the light falling off more steeply, a faint strip below the 1 joins it, and its box is taller.)
    placed = [(ink_of(i, h), x, 110) for i, h, x in ((2, 70, 8), (0, 90, 120), (1, 90, 230))]  # 1 7 2: the 1 in reach
    found = whole_boxes(segment_number(vignetted(placed, falloff=0.2)))
    assert len(found) == 3 and all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), (
        found,
        boxes_of(placed),
    )


def test_a_short_stroke_apart_from_every_digit_is_not_a_digit():
    # A stroke lifted off a digit and drawn apart from it (a 4's left stroke, a 9's tail, blurred loose in a
    # photo), overlapping no digit's columns, narrow and under half the writing's height: fitted to 28x28 it
    # is a perfect 1, and a phone photo of "143354" read "1143354". A lone piece is a digit only when at
    # least MIN_DIGIT_HEIGHT of the writing tall or wide.
    stroke = np.zeros((42, 8), np.float32)
    stroke[:, 2:6] = 1.0
    placed = [(ink_of(0, 100), 40, 50), (ink_of(1, 100), 230, 50)]  # 7 2
    segmented = segment_number(png(page([*placed, (stroke, 170, 100)])))
    found = whole_boxes(segmented)
    assert len(found) == 2, found
    assert all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), (found, boxes_of(placed))
    # every other candidate reads "0" at 0.6 (sure_of): a cluster for the stroke would read "702"
    assert read_number(segmented, sure_of(segmented, boxes_of(placed), "72")).text == "72"


@pytest.mark.parametrize(("height", "width"), [(42, 95), (56, 30)])
def test_a_short_digit_beside_taller_ones_is_kept(height, width):
    # Digits are written at different heights: a lone piece at least half the writing's height tall, or as
    # wide (a 2 written flat: the same photo set had two, as tall as the stroke above), is offered.
    short = np.clip(cv2.resize(ink_of(1, 100), (width, height), interpolation=cv2.INTER_AREA) * 1.5, 0, 1)
    placed = [(ink_of(0, 100), 40, 50), (short, 180, 150 - height), (ink_of(3, 100), 320, 50)]  # 7 2 0
    segmented = segment_number(png(page(placed)))
    found = whole_boxes(segmented)
    assert len(found) == 3, found
    assert read_number(segmented, sure_of(segmented, boxes_of(placed), "720")).text == "720"


def _smudge(height: int, width: int) -> np.ndarray:
    """A solid smudge (chalk rubbed on a board, a blot of ink): a filled ellipse."""
    blot = np.zeros((height, width), np.float32)
    cv2.ellipse(blot, (width // 2, height // 2), (width // 2 - 1, height // 2 - 1), 0, 0, 360, 1.0, -1)
    return blot


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_mark_far_along_the_line_is_not_part_of_the_number(side):
    # An outside check's boards: smudges of chalk on the number's line, 8 of its heights from it, were read as
    # digits of it ("1430" read "143080", "664" read "6640"). Writing further than FAR_APART heights from the rest
    # is another run; the run with the most ink is the number.
    number = [(ink_of(i, 80), 430 + 100 * n, 60) for n, i in enumerate([0, 1, 2])]  # 7 2 1
    smudge = (_smudge(40, 30), 40 if side == "left" else 1100, 80)
    segmented = segment_number(png(page([*number, smudge], (200, 1200))))
    found = whole_boxes(segmented)
    assert len(found) == 3 and all(near(box, expected) for box, expected in zip(found, boxes_of(number))), found


def test_digits_written_wide_apart_are_one_number():
    # A number written with wide gaps (a house number spaced out: 1.5 times the writing's height) is one run.
    placed = [(ink_of(i, 80), 40 + 200 * n, 60) for n, i in enumerate([0, 1, 2, 3])]  # 7 2 1 0
    found = whole_boxes(segment_number(png(page(placed, (200, 900)))))
    assert len(found) == 4 and all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), found


def test_a_stroke_many_times_the_writings_height_is_not_a_digit():
    # An outside check's notebook page, read closer around its number: the margin line crossing the closer look's
    # region, top to bottom, 5.6 times the digits' height, read as a leading 1 ("92249814" read "192249814"). A piece
    # over TALL times the writing's height is not part of the number.
    line = np.zeros((300, 6), np.float32)
    line[:, 1:5] = 1.0
    number = [(ink_of(i, 60), 120 + 80 * n, 140) for n, i in enumerate([0, 1, 2])]  # 7 2 1
    segmented = segment_number(png(page([(line, 60, 30), *number], (360, 420))))
    found = whole_boxes(segmented)
    assert len(found) == 3 and all(near(box, expected) for box, expected in zip(found, boxes_of(number))), found


def _thickened(ink: np.ndarray, pixels: int) -> np.ndarray:
    return np.asarray(cv2.dilate(ink, np.ones((pixels, pixels), np.uint8)), np.float32)


@pytest.mark.parametrize("side", ["left", "right"])
def test_hairlines_beside_a_number_written_with_a_pen_are_not_ones(side):
    # An outside check's whole frames of squared paper: what was left of the grid's lines down beside the number, a
    # pixel or two wide and as tall as the digits or taller, was read as 1s ("6922" read "1111100821"). The number's
    # strokes are several pixels deep; lines with no pixel over HAIRLINE from the paper beside them are not digits.
    number = [(_thickened(ink_of(i, 80), 5), 300 + 90 * n, 60) for n, i in enumerate([0, 1, 2])]  # 7 2 1
    hairline = np.zeros((110, 1), np.float32)
    hairline[:, 0] = 1.0
    xs = (150, 200, 250) if side == "left" else (600, 650, 700)
    segmented = segment_number(png(page([*number, *((hairline, x, 45) for x in xs)], (220, 800))))
    found = whole_boxes(segmented)
    assert len(found) == 3 and all(near(box, expected, 8) for box, expected in zip(found, boxes_of(number))), found


def test_a_thin_digit_among_bold_ones_is_kept():
    # The bench's canvases take each digit from another MNIST writer: a thin 7 beside a bold 1 and 2 is a digit all the
    # same (its strokes a third as deep as theirs, but more than hairlines).
    number = [(ink_of(0, 80), 40, 60), (_thickened(ink_of(2, 80), 9), 130, 60), (_thickened(ink_of(1, 80), 9), 210, 60)]
    found = whole_boxes(segment_number(png(page(number, (220, 340)))))
    assert len(found) == 3, found


def _tilted_rules(length: int, count: int, apart: int, tilt: float) -> np.ndarray:
    """What is left of `count` printed rules `apart` pixels apart, each a stroke 2 pixels thick and `length` long,
    photographed at `tilt` degrees."""
    drop = round(length * np.tan(np.radians(tilt)))
    rules = np.zeros((apart * (count - 1) + drop + 4, length), np.float32)
    for n in range(count):
        cv2.line(rules, (0, 2 + n * apart + drop), (length - 1, 2 + n * apart), 1.0, 2)
    return rules


@pytest.mark.parametrize("tilt", [1.0, 2.0, -1.5])
def test_what_is_left_of_printed_rules_at_a_tilt_is_no_digit(tilt):
    # An outside check's whole frames of notebook paper, a number written small: rules the line finder left in the ink,
    # pieces a few pixels thick and hundreds long at a degree or two, were not bars (their boxes, a few rows deep,
    # are mostly paper), held the most ink, and so set the writing's height: the number's digits were taken for
    # strokes too tall to be writing and a piece of a rule was read ("4036641" read "2"). A band's ink fills nearly
    # all of each column's span, at a tilt too.
    placed = [(ink_of(i, 40), 360 + 46 * n, 100) for n, i in enumerate([0, 1, 2])]  # 7 2 1
    rules = _tilted_rules(300, 5, 14, tilt)
    for_rules = [(rules, 20, 95 - rules.shape[0] // 2), (rules, 20, 160 - rules.shape[0] // 2)]
    segmented = segment_number(png(page([*placed, *for_rules], (260, 560))))
    found = whole_boxes(segmented)
    assert len(found) == 3 and all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), (
        found,
        boxes_of(placed),
    )


def _sheet_top_with(number: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ink of a squared page's whole frame (837x669, the number work frame's page): the grid's crossings left as
    dots, and what was left of its top line along the page's top edge, 3 pixels thick, rising 23 pixels over its 334;
    with `number`, a number 30 pixels tall written at its end, its first digit's foot on the line. And the number's
    pixels."""
    ink = np.zeros((837, 669), np.uint8)
    for row in range(70, 820, 23):
        for col in range(20, 650, 25):
            ink[row : row + 3, col : col + 3] = 1
    cv2.line(ink, (12, 58), (346, 35), 1, 3)
    written = np.zeros_like(ink)
    if number:
        for n, index in enumerate([0, 3, 2, 1, 4]):
            digit = ink_of(index, 30) > 0.4
            x = 338 + 26 * n
            written[6 : 6 + digit.shape[0], x : x + digit.shape[1]] |= digit
    return np.maximum(ink, written), written


def test_a_number_written_on_a_pages_edge_is_kept_and_the_edge_taken_out():
    # An outside check's whole frame of squared paper: the number written just below the page's top, its first digit
    # touching what was left of the grid's top line there, was taken out with it as the page's edge, and read as no
    # digit ("703242").
    ink, written = _sheet_top_with(number=True)
    strength = np.full(ink.shape, 6.0, np.float32)
    left = left_out_at_edges(ink, strength, closing=0)  # strokes at 6 noise thresholds: none faint
    assert (left & written).sum() >= 0.9 * written.sum()
    line = np.zeros_like(ink)
    cv2.line(line, (12, 58), (330, 36), 1, 3)
    assert (left & line).sum() <= 0.05 * line.sum()


@pytest.mark.parametrize("down", [0, 150, 400])
def test_a_pages_edge_alone_is_taken_out_whole(down):
    # along the top only, and with the edge down the left side for a stretch (shorter than the page edge rule's 30% of
    # the height: not kept as writing joined to the top edge, where it reaches deepest) or further (a page's corner)
    ink, _ = _sheet_top_with(number=False)
    if down:
        cv2.line(ink, (12, 58), (12, 58 + down), 1, 3)
    dots = ink.copy()
    dots[:65] = 0
    dots[:, :16] = 0
    left = left_out_at_edges(ink, np.full(ink.shape, 6.0, np.float32), closing=0)
    assert np.array_equal(left, dots)
