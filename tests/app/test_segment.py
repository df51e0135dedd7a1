"""Numbers into candidate digits (app.imaging.segment), with no model: the candidates' boxes are checked
against where the digits were drawn, and the reading's choice with probabilities made up for the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.errors import TooManyDigits
from app.imaging import segment
from app.imaging.reading import read_number
from app.imaging.segment import Candidate, Cluster, Segmented, segment_number
from tests.app.imaging_helpers import encode, png
from tests.app.number_helpers import (
    boxes_of,
    cropped_to_ink,
    in_a_row,
    ink_of,
    near,
    page,
    sure_of,
    touching,
    whole_boxes,
)
from training.wrong_cuts import cut_kind


def test_separated_digits_one_cluster_each_left_to_right():
    placed = [(ink_of(i, 90), 40 + 130 * n, 50) for n, i in enumerate([0, 1, 2, 3])]  # 7 2 1 0
    segmented = segment_number(png(page(placed)))
    assert segmented.reason is None
    found = whole_boxes(segmented)
    assert len(found) == 4
    assert all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), (found, boxes_of(placed))
    reading = read_number(segmented, sure_of(segmented, boxes_of(placed), "7210"))
    assert reading.text == "7210" and reading.confidence == pytest.approx(0.99)
    assert [d.box for d in reading.digits] == found


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_large_jpegs_boxes_are_in_its_own_pixels(orientation):
    # An outside check: a phone photo's JPEG is decoded at a half to an eighth of its size (PIL's draft, for speed),
    # and the boxes were given in the pixels of that smaller image: "789" on a 1760x2346 photo boxed at half its place.
    # The upload's pixels as shown (EXIF orientation applied, as the reading is).
    placed = [(ink_of(i, 240), 300 + 500 * n, 480) for n, i in enumerate([0, 1, 2, 3])]  # 7 2 1 0
    upright = Image.fromarray(page(placed, (1200, 2600)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright if orientation == 1 else upright.rotate(90, expand=True)  # 6: turned back clockwise to show
    segmented = segment_number(encode(stored, "JPEG", quality=90, exif=exif))
    found = whole_boxes(segmented)
    assert len(found) == 4
    assert all(near(box, expected, 12) for box, expected in zip(found, boxes_of(placed))), (found, boxes_of(placed))


@pytest.mark.parametrize("margin", [0, 2])
def test_a_number_cropped_to_its_ink_is_found_digit_by_digit(margin):
    # A crop tool's or a client's crop: no paper around the number, so it takes the photo path (its border is not
    # one colour), whose steps take the frame's shorter side for a margin of paper. Its 1s, as tall as the frame,
    # were taken for printed lines down it and cut into dashes ("72104149" read "7280446"; a new user's finding).
    gray, placed = in_a_row([0, 1, 2, 3, 4, 5, 6, 7])  # 7 2 1 0 4 1 4 9
    crop, (x, y) = cropped_to_ink(gray, margin)
    expected = [(bx - x, by - y, w, h) for bx, by, w, h in boxes_of(placed)]
    segmented = segment_number(png(crop))
    found = whole_boxes(segmented)
    assert len(found) == 8 and all(near(box, want) for box, want in zip(found, expected)), (found, expected)
    assert read_number(segmented, sure_of(segmented, expected, "72104149")).text == "72104149"


@pytest.mark.parametrize("margin", [5, 6, 8])
def test_ones_in_a_photo_cut_close_around_the_number_are_not_taken_for_margin_lines(margin):
    # A scan cut with a few pixels of paper above and below: its 1s, most of the frame's height, were taken for
    # printed lines down it and their ink taken out ("846111" read "84611"; the second outside check's finding).
    gray, placed = in_a_row([0, 1, 2, 3, 4, 5])  # 7 2 1 0 4 1
    crop, (x, y) = cropped_to_ink(gray, margin)
    noisy = np.clip(0.85 * crop.astype(np.float32) + np.random.default_rng(0).normal(0, 3, crop.shape), 0, 255)
    ok, jpeg = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    expected = [(bx - x, by - y, w, h) for bx, by, w, h in boxes_of(placed)]
    segmented = segment_number(jpeg.tobytes())
    found = whole_boxes(segmented)
    assert ok and len(found) == 6 and all(near(box, want, 7) for box, want in zip(found, expected)), (found, expected)


@pytest.mark.parametrize(("cell", "margin"), [(60, 2), (60, 4), (92, 4)])
def test_the_lines_of_squared_paper_go_when_the_number_is_cut_close(cell, margin):
    # An outside check's phone frames of squared paper with the number at the frame's edge: a number cut close is
    # read again with paper put above and below it, and there its grid's lines down, ending at that paper, were never
    # taken for printed lines (each was read as a 1: "707" read "11118"). In that frame, lines down are looked for
    # in the photo itself, and no thicker than 3% of its height (a digit's strokes there are as tall as the frame).
    # Cells 0.7 and 1.1 of the digits' height (the check's squared paper: 0.55-1.25); at half, the lines across,
    # crossing every digit, are still left (main's reading as well). A box may hold a stub of a line (10 pixels).
    gray, placed = in_a_row([0, 1, 2, 3, 4, 5])  # 7 2 1 0 4 1
    crop, (x, y) = cropped_to_ink(np.pad(gray, 60, constant_values=255), margin)
    h, w = crop.shape
    grid = np.full((h * 4, w * 4), 255, np.uint8)  # drawn at 4x and shrunk: lines about 1.5 pixels wide
    for left in np.arange(13.3, w, cell):
        cv2.line(grid, (int(left * 4), 0), (int((left - 1.5) * 4), h * 4 - 1), 165, 7)
    for top in np.arange(25.5, h, cell):
        cv2.line(grid, (0, int(top * 4)), (w * 4 - 1, int((top + 1) * 4)), 165, 7)
    sheet = cv2.resize(grid, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    noisy = 0.85 * np.minimum(sheet, crop) + np.random.default_rng(0).normal(0, 2, crop.shape)
    ok, jpeg = cv2.imencode(".jpg", np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    expected = [(bx - x + 60, by - y + 60, bw, bh) for bx, by, bw, bh in boxes_of(placed)]
    segmented = segment_number(jpeg.tobytes())
    found = whole_boxes(segmented)
    assert ok and len(found) == 6 and all(near(box, want, 10) for box, want in zip(found, expected)), (found, expected)


def test_digits_of_different_heights_and_a_wavy_baseline():
    placed = [(ink_of(0, 60), 40, 100), (ink_of(1, 110), 160, 40), (ink_of(4, 80), 300, 70)]
    segmented = segment_number(png(page(placed)))
    found = whole_boxes(segmented)
    assert len(found) == 3
    assert all(near(box, expected) for box, expected in zip(found, boxes_of(placed))), (found, boxes_of(placed))


def test_overlapping_boxes_a_seven_over_a_one():
    # A 1, and a 7 whose top bar reaches back over it without touching it: their boxes overlap.
    gray = np.full((200, 400), 255, np.uint8)
    cv2.line(gray, (110, 70), (110, 170), 0, 9)  # the 1
    cv2.line(gray, (80, 45), (220, 45), 0, 9)  # the 7's bar, over the 1
    cv2.line(gray, (220, 45), (160, 170), 0, 9)  # the 7's stem
    segmented = segment_number(png(gray))
    one, seven = (106, 66, 9, 109), (76, 41, 149, 134)
    ones = [i for i, c in enumerate(segmented.candidates) if near(c.box, one)]
    # The 7 alone has about the box of the 7 with the 1 under its bar: it is told apart by its ink.
    near_seven = [i for i, c in enumerate(segmented.candidates) if near(c.box, seven)]
    most = max(float(segmented.candidates[i].pixels.sum()) for i in near_seven)
    sevens = [i for i in near_seven if segmented.candidates[i].pixels.sum() < 0.85 * most]
    assert ones and sevens, [c.box for c in segmented.candidates]
    probabilities = np.full((len(segmented.candidates), 10), 0.1, np.float32)
    for indices, digit in ((ones, 1), (sevens, 7)):
        probabilities[indices] = 0.01 / 9
        probabilities[indices, digit] = 0.99
    reading = read_number(segmented, probabilities)
    assert reading.text == "17", [d.box for d in reading.digits]
    assert near(reading.digits[0].box, one) and near(reading.digits[1].box, seven)


def test_touching_pair_is_offered_cut_in_two():
    gray, placed = touching(0, 3)  # a 7 and a 0
    count, _ = cv2.connectedComponents((gray < 128).astype(np.uint8))
    assert count == 2, "the digits should touch"
    segmented = segment_number(png(gray))
    assert len(segmented.clusters) == 1
    expected = boxes_of(placed)
    # Some cut leaves a left part ending and a right part starting near where the digits meet.
    lefts = [
        c.box
        for c in segmented.candidates
        if abs(c.box[0] - expected[0][0]) <= 3 and c.box[2] < 0.9 * (expected[1][0] + expected[1][2] - expected[0][0])
    ]
    assert any(abs(box[0] + box[2] - (expected[0][0] + expected[0][2])) <= 8 for box in lefts), (lefts, expected)
    reading = read_number(segmented, sure_of(segmented, expected, "70"))
    assert len(reading.digits) in (1, 2)  # the made-up probabilities need not match the cut exactly


def test_slanted_touching_digits_that_overlap_in_columns_are_cut_apart():
    # Two strokes leaning right that touch near the top: the gap between them runs from column ~85 at the
    # bottom to ~155 at the top, more than half the height sideways, under the right one's top.
    left, right = np.zeros((240, 320), np.uint8), np.zeros((240, 320), np.uint8)
    cv2.line(left, (30, 180), (150, 60), 255, 9)
    cv2.line(right, (140, 180), (158, 60), 255, 9)
    left, right = left > 0, right > 0
    gray = np.where(left | right, 0, 255).astype(np.uint8)
    assert cv2.connectedComponents((gray < 128).astype(np.uint8))[0] == 2, "the strokes should touch"
    segmented = segment_number(png(gray), masks=True)
    shares = []
    for candidate in segmented.candidates:
        assert candidate.mask is not None
        top, x, mask = candidate.mask
        window = (slice(top, top + mask.shape[0]), slice(x, x + mask.shape[1]))
        shares.append([(stroke[window] & (mask > 0)).sum() / stroke.sum() for stroke in (left, right)])
    # each stroke is offered alone: nearly all of its ink, next to none of the other's
    assert any(a >= 0.95 and b <= 0.05 for a, b in shares), shares
    assert any(b >= 0.95 and a <= 0.05 for a, b in shares), shares


@pytest.mark.parametrize(
    ("gray", "reason"),
    [
        pytest.param(np.full((100, 300), 255, np.uint8), "no_ink", id="blank-paper"),
        pytest.param(np.zeros((50, 50), np.uint8), "no_ink", id="black"),
    ],
)
def test_no_digit_gives_a_reason(gray, reason):
    segmented = segment_number(png(gray))
    assert segmented.reason == reason and not segmented.candidates
    reading = read_number(segmented, np.zeros((0, 10), np.float32))
    assert reading.text == "" and reading.reason == reason and reading.confidence is None


def test_canvas_drawing_transparent_background():
    placed = [(ink_of(0, 90), 30, 40), (ink_of(1, 90), 150, 40)]
    ink = 255 - page(placed, (180, 300))
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink  # black strokes, alpha carries the drawing
    segmented = segment_number(png(rgba))
    assert len(segmented.clusters) == 2


def test_too_many_digits_refused():
    placed = [(ink_of(i, 60), 20 + 80 * n, 60) for n, i in enumerate([0, 1, 2, 3, 4])]
    with pytest.raises(TooManyDigits):
        segment_number(png(page(placed)), max_digits=3)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.builds(
            lambda h, w, seed: np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8),
            st.integers(1, 160),
            st.integers(1, 400),
            st.integers(0, 2**32 - 1),
        ),
        st.builds(
            lambda h, w, v: np.full((h, w), v, np.uint8), st.integers(1, 60), st.integers(1, 60), st.integers(0, 255)
        ),
    )
)
def test_any_image_is_read_or_refused_as_documented(pixels):
    try:
        segmented = segment_number(png(pixels), max_digits=32)
    except TooManyDigits:
        return
    assert (segmented.reason is None) == bool(segmented.candidates)
    assert segmented.pixels.shape == (len(segmented.candidates), 28, 28) and np.isfinite(segmented.pixels).all()
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), len(segmented.candidates)).astype(np.float32)
    reading = read_number(segmented, probabilities)
    assert len(reading.text) == len(reading.digits) <= 32
    for digit in reading.digits:
        x, y, w, h = digit.box
        assert 0 <= x and 0 <= y and w >= 1 and h >= 1 and x + w <= pixels.shape[1] + 1 and y + h <= pixels.shape[0] + 1


def test_marks_the_model_doubts_are_left_out_and_doubt_everywhere_is_no_digit():
    placed = [(ink_of(i, 90), 40 + 130 * n, 50) for n, i in enumerate([0, 1, 2])]  # 7 2 1
    gray = page(placed)
    cv2.circle(gray, (480, 95), 30, 0, 6)  # a ring beside the number
    segmented = segment_number(png(gray))
    assert len(segmented.clusters) == 4
    probabilities = sure_of(segmented, boxes_of(placed), "721")
    ring = [i for i, c in enumerate(segmented.candidates) if c.box[0] > 440]
    probabilities[ring] = 0.1  # the model's answer to what is no digit: every class alike
    reading = read_number(segmented, probabilities)
    assert reading.text == "721" and reading.reason is None
    doubtful = read_number(segmented, np.full((len(segmented.candidates), 10), 0.1, np.float32))
    assert doubtful.text == "" and doubtful.reason == "no_digit" and doubtful.confidence is None


def test_an_image_that_would_cost_too_much_work_is_refused():
    # One wide smear of ink as tall as the image: each of its many cuts leads to many candidates. (Its box's
    # edges are thicker than a printed line, 3% of the longer side across and 4.5% down, and its strokes too
    # short to be taken for printed lines down the page: their ink would be taken out. Paper above and below it:
    # ink at the top or bottom edge is a number cropped tight, read again with a margin of paper.)
    gray = np.full((240, 500), 255, np.uint8)
    cv2.rectangle(gray, (20, 40), (480, 200), 0, 26)
    for x in range(40, 480, 31):
        cv2.line(gray, (x, 40), (x + 15, 130), 0, 4)
    with pytest.raises(TooManyDigits, match="digits' worth"):
        segment_number(png(gray), max_digits=2)
    assert len(segment_number(png(gray), max_digits=50).candidates) > 2 * 80


def test_ten_thousand_dots_are_refused_quickly_and_cheaply():
    # A small PNG of 2x2 dots a pixel apart: ten thousand pieces of ink (all pairs of them would be 100M).
    rgba = np.zeros((300, 300, 4), np.uint8)  # a canvas export: black dots on transparent
    rgba[::3, ::3, 3] = rgba[1::3, ::3, 3] = 255
    with pytest.raises(TooManyDigits):  # counted by a sweep, not by comparing all pairs (that took gigabytes)
        segment_number(png(rgba))


def test_two_strokes_alike_keep_their_own_boxes():
    gray = np.full((200, 400), 255, np.uint8)
    for x in (150, 190):  # "11": the same stroke twice, their columns overlapping (one cluster)
        cv2.line(gray, (x + 30, 40), (x - 30, 160), 0, 8)
    segmented = segment_number(png(gray))
    probabilities = np.full((len(segmented.candidates), 10), 0.1, np.float32)
    for index, candidate in enumerate(segmented.candidates):
        if candidate.box[2] < 80:  # one stroke: sure it is a 1; both strokes together: no digit
            probabilities[index] = np.eye(10, dtype=np.float32)[1]
    reading = read_number(segmented, probabilities)
    assert reading.text == "11"
    (first, *_), (second, *_) = (d.box for d in reading.digits)
    assert second >= first + 30, [d.box for d in reading.digits]  # each stroke its own box, 40 px apart


def test_a_short_mark_beside_the_number_is_not_cut_into_slivers():
    # A 1 and a 5 whose flat top stroke was lifted off and drawn apart to its right: that stroke is a
    # cluster of its own, a third as tall as the writing. Cut into thin slices it offered "digits" a few
    # pixels wide and a third of the line tall, each a perfect 1 once fitted to 28x28 (a phone photo read
    # "15" as a 1, a 5 and nineteen 1s). No candidate but a cluster taken whole is under half the line high.
    gray = np.full((200, 420), 255, np.uint8)
    cv2.line(gray, (90, 50), (70, 150), 0, 7)  # the 1
    cv2.ellipse(gray, (185, 118), (34, 30), 0, -140, 150, 0, 7)  # the 5's belly
    cv2.line(gray, (158, 60), (158, 95), 0, 7)  # and its stem
    cv2.line(gray, (255, 66), (330, 58), 0, 30)  # its top stroke, apart: 75 wide, about 36 tall
    segmented = segment_number(png(gray))
    assert len(segmented.clusters) == 3
    line_height = max(c.box[3] for c in segmented.candidates)
    wholes = {segmented.candidates[i].box for c in segmented.clusters for i in c.parts[(0, c.points - 1)]}
    short = [c.box for c in segmented.candidates if c.box[3] < 0.5 * line_height and c.box not in wholes]
    assert not short, short


def test_a_wide_cluster_doubted_whole_does_not_hide_the_sure_digits_in_it():
    # One cluster three digits wide (a number joined by what is left of a printed line): its two digits are
    # sure, the line's stretch and the cluster taken whole are doubted alike. The whole hides three digits'
    # worth of doubt, not one's: the reading keeps the sure digits rather than answering no digit at all.
    blank = np.zeros((28, 28), np.float32)
    boxes = [(0, 0, 450, 100), (0, 0, 150, 100), (150, 0, 150, 100), (300, 0, 150, 100)]  # whole, then three
    segmented = Segmented(
        candidates=[Candidate(blank, box) for box in boxes],
        clusters=[Cluster(4, {(0, 3): [0], (0, 1): [1], (1, 2): [2], (2, 3): [3]}, {})],
    )
    probabilities = np.full((4, 10), 0.1, np.float32)
    probabilities[3] = (1 - 0.09) / 9
    probabilities[3, 0] = 0.09  # the line's stretch: a little more doubted than the whole
    for index, digit in ((1, 7), (2, 2)):
        probabilities[index] = 0.01 / 9
        probabilities[index, digit] = 0.99
    reading = read_number(segmented, probabilities)
    assert reading.text.startswith("72"), reading


def test_a_wide_piece_taken_whole_does_not_lose_the_digit_beside_it():
    # A 7 whose bar reaches over a 1 that touches a 0: the 7 is one wide piece, the 1 and the 0 another.
    # A stretch that takes the 7 whole (so that its bar is not cut off) must not leave out the 1 that lies
    # in that stretch: that 1 would be in no candidate of the reading, and the number read "70".
    layers = [np.zeros((240, 400), np.uint8) for _ in range(3)]
    cv2.line(layers[0], (30, 60), (140, 60), 255, 9)
    cv2.line(layers[0], (140, 60), (60, 170), 255, 9)
    cv2.line(layers[1], (128, 170), (150, 95), 255, 9)
    cv2.ellipse(layers[2], (194, 125), (38, 48), 0, 0, 360, 255, 9)
    strokes = [layer > 0 for layer in layers]
    gray = np.where(np.any(strokes, axis=0), 0, 255).astype(np.uint8)
    assert cv2.connectedComponents((gray < 128).astype(np.uint8))[0] == 3, "two pieces: the 7, the 1 with the 0"
    segmented = segment_number(png(gray), masks=True)
    # The model is sure of a candidate holding one stroke's digit whole, as the reading model's training
    # labels it (training.wrong_cuts.cut_kind), and doubts every other one.
    layers = np.stack(strokes).astype(np.float32)
    mass = layers.sum(axis=(1, 2))
    probabilities = np.full((len(segmented.candidates), 10), 0.1, np.float32)
    for index, candidate in enumerate(segmented.candidates):
        if (which := cut_kind(layers, mass, candidate)) >= 0:
            probabilities[index] = 0.01 / 9
            probabilities[index, (7, 1, 0)[which]] = 0.99
    assert read_number(segmented, probabilities).text == "710"


def test_two_narrow_touching_digits_are_cut_only_at_the_second_look():
    # two 1s touching at the foot: one piece 0.68 of its height wide, not wider than a digit may be (WIDE_PIECE),
    # so it is offered whole only; the second look (FINER_WIDE_PIECE) cuts it, and a model sure of a candidate
    # holding one digit whole (as the reading model's training labels it) and doubting the rest reads both
    from app.imaging.segment import FINER_WIDE_PIECE, WIDE_PIECE

    layers = [np.zeros((200, 400), np.uint8) for _ in range(2)]
    cv2.line(layers[0], (50, 50), (50, 150), 255, 9)
    cv2.line(layers[1], (115, 50), (58, 150), 255, 9)
    strokes = [layer > 0 for layer in layers]
    gray = np.where(np.any(strokes, axis=0), 0, 255).astype(np.uint8)
    assert cv2.connectedComponents((gray < 128).astype(np.uint8))[0] == 2, "one piece: the 1s touch"
    first = segment_number(png(gray))
    assert len(first.candidates) == 1 and WIDE_PIECE > 0.68 > FINER_WIDE_PIECE
    finer = segment_number(png(gray), wide_piece=FINER_WIDE_PIECE, masks=True)
    assert np.array_equal(finer.line, first.line)  # the line reader's image is the same: its frames are reused
    ink = np.stack(strokes).astype(np.float32)
    mass = ink.sum(axis=(1, 2))
    probabilities = np.full((len(finer.candidates), 10), 0.1, np.float32)
    for index, candidate in enumerate(finer.candidates):
        if cut_kind(ink, mass, candidate) >= 0:
            probabilities[index] = 0.01 / 9
            probabilities[index, 1] = 0.99
    assert read_number(first, np.full((1, 10), 0.1, np.float32)).text == ""  # the pair whole, doubted
    assert read_number(finer, probabilities).text == "11"


@pytest.mark.parametrize("medium", ["scan", "photo"])
def test_a_very_large_part_is_worked_smaller_and_looks_the_same_to_the_model(medium, monkeypatch):
    # Parts over LARGEST_PART pixels (a page's edge or a shadow taken for ink on a whole phone frame) are closed and
    # thickened at that size: the work grows with the fourth power of the side (a frame took 26 s). A digit that
    # large (written across a photo) must look the same to the model either way.
    placed = [(ink_of(i, 430), 60 + 420 * n, 40) for n, i in enumerate([1, 4])]  # 2 4
    gray = page(placed, (520, 900)).astype(np.float32)
    if medium == "photo":  # light falling off across it, a little noise: the photo path
        gray = gray * np.linspace(0.95, 0.7, gray.shape[1])[None, :] + np.random.default_rng(3).normal(0, 2, gray.shape)
    data = encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)), "JPEG" if medium == "photo" else "PNG")
    bounded, bound = segment_number(data), segment.LARGEST_PART
    monkeypatch.setattr(segment, "LARGEST_PART", 10**6)
    unbounded = segment_number(data)
    digits = [c for c in unbounded.candidates if any(near(c.box, box, 12) for box in boxes_of(placed))]
    assert len(digits) >= 2 and all(max(c.box[2:]) > bound for c in digits)  # the test reaches the bound
    for candidate in digits:  # the same part (its box) among the bounded ones, the same image but for a pixel's shift
        same = [_shifted_difference(c.pixels, candidate.pixels) for c in bounded.candidates if c.box == candidate.box]
        assert same and min(same) < 0.02, (candidate.box, same)


def _shifted_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The mean absolute difference of two 28x28 images, `a` shifted up to a pixel either way (the centre of mass
    rounded the other way)."""
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return min(float(np.abs(np.roll(a, shift, axis=(0, 1)) - b).mean()) for shift in shifts)
