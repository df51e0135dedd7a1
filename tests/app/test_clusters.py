"""The clusters of a number's ink (app.imaging.clusters.find_clusters): what is writing and what is a bar, a printed
line's remnant, on masks drawn for the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.imaging.clusters import find_clusters
from tests.app.number_helpers import ink_of, page


def _mask_with(pieces: list[tuple[np.ndarray, int, int]], shape: tuple[int, int] = (120, 260)) -> np.ndarray:
    """The 0/1 `pieces` drawn as `page` draws ink, as a mask."""
    return (page(pieces, shape) < 128).astype(np.uint8)


def _run_together(indices: list[int], height: int) -> np.ndarray:
    """Test digits `indices` `height` pixels tall written a pixel apart and blurred into one piece, as a number written
    small in a large photo comes out at the work frame's scale (its digits 8-12 pixels tall)."""
    inks = [ink_of(i, height) > 0.3 for i in indices]
    out = np.zeros((height, sum(i.shape[1] + 1 for i in inks)), np.uint8)
    x = 0
    for ink in inks:
        out[:, x : x + ink.shape[1]] |= ink
        x += ink.shape[1] + 1
    return cv2.dilate(out, np.ones((3, 3), np.uint8))


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    clusters, _ = find_clusters(mask, mask.astype(np.float32), 12)
    return [(columns.start, columns.stop) for columns, _, _ in clusters]


def test_digits_run_together_into_a_flat_solid_piece_as_tall_as_the_writing_are_writing():
    # An outside check's whole phone frame (2732x3642) of "1385604" written 30 pixels tall: in the 1,024-pixel work
    # frame its digits, 8 pixels tall, ran together past the 1 into one piece 54 pixels wide and 12 tall, 70% of its box
    # inked: flat and solid as a printed line's remnant is, so it was left out, and only the 1 read ("138" once the
    # closer look, round what was read, had looked).
    one = np.ones((12, 3), np.uint8)
    rest = _run_together([18, 2, 3, 4, 6], 12)
    assert rest.shape[0] < 0.25 * rest.shape[1] and rest.mean() > 0.6  # a bar by its box
    mask = _mask_with([(one, 20, 50), (rest, 27, 50)])
    spans = _spans(mask)
    assert spans and spans[0][0] <= 20 and spans[-1][1] >= 27 + rest.shape[1] - 1, spans


def test_a_bar_thinner_than_the_writing_beside_it_is_still_left_out():
    # what is left of a printed line, solid and flat, a third as tall as the digits beside it
    placed = [((ink_of(i, 40) > 0.3).astype(np.uint8), x, 40) for x, i in zip([20, 70, 130], [0, 1, 2])]
    bar = np.ones((13, 80), np.uint8)
    spans = _spans(_mask_with([*placed, (bar, 165, 55)]))
    assert len(spans) == 3 and spans[-1][1] <= 165, spans


def test_a_comb_fields_ticks_as_tall_as_the_writing_are_not_a_digit():
    # A form's comb field (a line with ticks between its cells), its ticks reaching most of the digits' height: not
    # solid, so still a bar even as tall as the writing (a small crop of one, "514", was read "4" when it was not).
    placed = [((ink_of(i, 30) > 0.3).astype(np.uint8), x, 40) for x, i in zip([28, 65, 114], [0, 1, 2])]  # in its cells
    comb = np.zeros((26, 150), np.uint8)
    comb[-2:] = 1
    comb[:, ::40] = 1
    spans = _spans(_mask_with([*placed, (comb, 20, 48)]))
    assert len(spans) == 3, spans


@pytest.mark.parametrize(
    ("strength", "clusters"),
    [
        pytest.param(0.08, 3, id="a-stain-a-tenth-as-dark-is-left-out"),
        pytest.param(0.4, 4, id="a-digit-half-as-dark-is-writing"),
    ],
)
def test_a_mark_far_fainter_than_the_writing_beside_it_is_not_part_of_it(strength, clusters):
    # Whole phone frames of a sheet, a little blurred (a phone's focus lowers the camera noise, and so the ink's
    # threshold): a stain as large as a digit in line after the number, a tenth as dark as the pen, was a piece of ink
    # and read as a confident 0 or 9 ("1750" read "17509"). Its darkest ink, not its size, says it is not written. A
    # digit written lighter than the rest (a pencil pressed less) is still writing.
    placed = [((ink_of(i, 40) > 0.3).astype(np.uint8), x, 40) for x, i in zip([20, 70, 120], [0, 1, 2])]
    mask = _mask_with(placed)
    ink = 0.8 * mask.astype(np.float32)
    spot = cv2.ellipse(np.zeros(mask.shape, np.uint8), (190, 60), (14, 20), 0, 0, 360, 1, -1)
    mask |= spot
    ink[spot > 0] = strength
    found, _ = find_clusters(mask, ink, 12)
    assert len(found) == clusters, [(columns.start, columns.stop) for columns, _, _ in found]
