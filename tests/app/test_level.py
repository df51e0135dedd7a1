"""A number photographed at a tilt (app.imaging.level): the writing's angle found from its ink, and the ink turned level
with a map back to where it was."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.imaging import level
from app.imaging.number_ink import find_ink
from app.imaging.segment import segment_number
from tests.app.imaging_helpers import png
from tests.app.number_helpers import in_a_row
from tests.conftest import REPO_ROOT


def _ink(indices: list[int], degrees: float, gap: int = 15) -> np.ndarray:
    """The mask of test digits written in a row, `gap` pixels apart, turned by `degrees` (anticlockwise as shown) on a
    frame with room."""
    gray, _ = in_a_row(indices, height=60, gap=gap)
    frame = np.full((700, 900), 255, np.uint8)
    y, x = (700 - gray.shape[0]) // 2, (900 - gray.shape[1]) // 2
    frame[y : y + gray.shape[0], x : x + gray.shape[1]] = gray
    turn = cv2.getRotationMatrix2D((450, 350), degrees, 1.0)
    frame = cv2.warpAffine(frame, turn, (900, 700), borderValue=255)
    return (frame < 128).astype(np.uint8)


@pytest.mark.parametrize("degrees", [-25.0, -15.0, 12.0, 20.0])
def test_a_number_written_at_a_tilt_has_its_angle_found(degrees):
    # anticlockwise as shown is its right end higher: the writing's angle (clockwise) is the opposite
    found = level.tilt(_ink([0, 1, 2, 3, 4, 5], degrees))
    assert found == pytest.approx(-degrees, abs=1.0)


def test_digits_that_touch_at_a_tilt_have_their_angle_found():
    # one or two pieces of ink, but a long line
    mask = _ink([0, 1, 2, 3, 4, 5, 6], 20.0, gap=-6)
    assert cv2.connectedComponents(mask)[0] - 1 <= 2
    assert level.tilt(mask) == pytest.approx(-20.0, abs=1.0)


def _with_line_ends(mask: np.ndarray, degrees: float) -> np.ndarray:
    """`mask` with what a ruled page turned by `degrees` leaves of its lines at the frame's corners (the ends cut too
    short by the corners to be found as printed lines: 250 pixels, parallel to the writing, two at each of the two
    corners across the writing's line)."""
    out = mask.copy()
    a = np.radians(degrees)
    dx, dy = round(250 * np.cos(a)), round(-250 * np.sin(a))
    height, width = mask.shape
    for offset in (0, 50):
        if degrees > 0:  # right end higher: ends at the top left and the bottom right
            ends = [((10, 10 - dy + offset), (10 + dx, 10 + offset))]
            ends.append(((width - 10 - dx, height - 10 - offset), (width - 10, height - 10 + dy - offset)))
        else:  # at the top right and the bottom left
            ends = [((width - 10 - dx, 10 + offset), (width - 10, 10 + dy + offset))]
            ends.append(((10, height - 10 - dy - offset), (10 + dx, height - 10 - offset)))
        for start, end in ends:
            cv2.line(out, start, end, 1, 5)
    return out


def _with_dashes_at_the_corners(mask: np.ndarray, degrees: float) -> np.ndarray:
    """`mask` with what a squared page turned by `degrees` leaves of its grid at the frame's four corners once its lines
    are taken out: dashes 16 pixels long and 2 thick, along and across the writing's angle, too small each to count as
    a piece of writing, but spreading the ink across the frame."""
    out = mask.copy()
    height, width = mask.shape
    a = np.radians(degrees)
    for cx, cy in ((60, 60), (width - 60, 60), (60, height - 60), (width - 60, height - 60)):
        for along in (a, a + np.pi / 2):
            for step in range(-2, 3):
                x, y = cx + 24 * step * np.cos(along), cy - 24 * step * np.sin(along)
                dx, dy = 8 * np.cos(along), -8 * np.sin(along)
                cv2.line(out, (round(x - dx), round(y - dy)), (round(x + dx), round(y + dy)), 1, 2)
    return out


@pytest.mark.parametrize(
    ("marks", "degrees", "alone"),
    [
        # A notebook page photographed at 20-30 degrees: the ends of its lines at the frame's corners, parallel to the
        # writing, spread the ink across the frame, so the writing did not look long along its line (0.74 times as long
        # as across it, 2.5 asked), was not levelled, and its end digits were left out as marks off it ("1700135" read
        # "700135"). The angle is taken from the writing: the pieces near its largest ones. A digit or two alone is not
        # turned (above); among line ends, by the page's angle.
        pytest.param(_with_line_ends, -25.0, True, id="line-ends--25"),
        pytest.param(_with_line_ends, 20.0, True, id="line-ends-20"),
        # A squared page at 20-30 degrees, its grid taken out to the frame's corners but for dashes there (a dev
        # generator's whole frames): they spread the ink likewise; the writing's own pieces, all in one group (no dash
        # counts as a piece of writing), were not taken for it, and it was left unlevelled, its end digits lost as marks
        # off the line ("56056284" read "05", "6540289" read "7028"). A digit or two is not turned, dashes or not.
        pytest.param(_with_dashes_at_the_corners, -30.0, False, id="dashes--30"),
        pytest.param(_with_dashes_at_the_corners, 25.0, False, id="dashes-25"),
    ],
)
def test_a_number_at_a_tilt_among_marks_at_the_corners_has_its_angle_found(marks, degrees, alone):
    mask = marks(_ink([0, 1, 2, 3, 4, 5], degrees), degrees)
    assert level.estimate(mask)[2] < level.LONG  # the premise
    assert level.tilt(mask) == pytest.approx(-degrees, abs=1.0)
    for indices in ([0], [5, 18]):
        assert level.tilt(_ink(indices, degrees)) == 0.0
        assert level.tilt(marks(_ink(indices, degrees), degrees)) == pytest.approx(-degrees if alone else 0.0, abs=1.0)


@pytest.mark.parametrize("seed,degrees", [(1, 25.0), (3, -20.0)])
def test_a_number_at_a_tilt_among_dirt_has_its_angle_found(seed, degrees):
    # A blotchy photo at a tilt (a dev generator's whole frames): specks all over the frame blur the whole ink's profile
    # (under 1.3 times as sharp as level), though the writing's own is sharp; its angle is the writing's.
    rng = np.random.default_rng(seed)
    mask = _ink([0, 1, 2, 3, 4, 5], degrees)
    for _ in range(120):
        centre = (int(rng.integers(0, mask.shape[1])), int(rng.integers(0, mask.shape[0])))
        cv2.circle(mask, centre, int(rng.integers(5, 11)), 1, -1)
    assert level.estimate(mask)[1] < level.GAIN  # the premise
    assert level.tilt(mask) == pytest.approx(-degrees, abs=1.0)


@pytest.mark.parametrize("indices", [[0, 1, 2, 3, 4, 5], [7, 8, 9]])
def test_a_level_number_is_left_as_it_is(indices):
    assert level.tilt(_ink(indices, 0.0)) == 0.0
    assert level.tilt(_ink(indices, 1.5)) == 0.0  # a wavy baseline tilts as much


@pytest.mark.parametrize("indices", [[0], [2], [3], [2, 18], [5, 18]])  # 7, 1, 0, 13, 13
def test_a_digit_or_two_at_a_tilt_is_not_turned(indices):
    # a lone digit has no line to level (its own slant is its writer's); nor has a pair, one a 1 slanted hard (an
    # outside check's "13" turned level read "23")
    assert level.tilt(_ink(indices, 20.0)) == 0.0
    assert level.tilt(_ink(indices, -25.0)) == 0.0


def test_a_frame_turned_level_maps_back_to_where_it_was():
    mask = _ink([0, 1, 2, 3, 4, 5], 15.0)
    turned, ink, back = level.turned(mask, mask.astype(np.float32), level.tilt(mask))
    assert turned.sum() == pytest.approx(mask.sum(), rel=0.02) and ink.max() == 1.0  # nothing cut off
    rows, cols = np.nonzero(turned)
    assert np.ptp(rows) < 0.5 * np.ptp(np.nonzero(mask)[0])  # level: its rows fewer than at a tilt
    # every turned pixel maps back onto the ink as it was (within the pixel the turn rounds to)
    xs = back[0, 0] * cols + back[0, 1] * rows + back[0, 2]
    ys = back[1, 0] * cols + back[1, 1] * rows + back[1, 2]
    near = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    assert near[np.round(ys).astype(int), np.round(xs).astype(int)].mean() > 0.98


def test_a_levelled_numbers_candidates_keep_their_ink_where_it_was_written():
    # training.wrong_cuts and the bench label each candidate by the digits' ink its mask holds, in the work frame as
    # it was: a levelled number's masks are turned back to it
    mask = _ink([0, 1, 2, 3, 4, 5], 18.0)
    segmented = segment_number(png(np.where(mask > 0, 0, 255).astype(np.uint8)), masks=True)
    assert len(segmented.clusters) == 6
    near = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0
    for candidate in segmented.candidates:
        assert candidate.mask is not None
        top, left, held = candidate.mask
        assert near[top : top + held.shape[0], left : left + held.shape[1]][held].mean() > 0.95
        x, y, w, h = candidate.box  # its box (upload pixels: the work frame's here) round that ink, to a pixel or two
        assert x <= left + 1 and y <= top + 1 and left + held.shape[1] <= x + w + 2 and top + held.shape[0] <= y + h + 2


def test_a_pair_with_a_one_slanted_hard_is_not_turned():
    # An outside check's "13", its 1 slanted 45 degrees and long: the two digits' ink makes a line 26 degrees off level,
    # sharp and long enough, and turned level it read "23". Two pieces of ink are no line to level.
    found = find_ink((REPO_ROOT / "tests" / "fixtures" / "slanted_one_13.jpg").read_bytes(), 10**8)
    assert not isinstance(found, str) and found.turn is None


def test_a_levelled_numbers_boxes_lie_within_the_upload():
    # a digit at the image's corner: the corners of its box turned back fall outside the image, its box does not
    mask = _ink([0, 1, 2, 3, 4, 5], 18.0)
    rows, cols = np.nonzero(mask)
    crop = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    segmented = segment_number(png(np.where(crop > 0, 0, 255).astype(np.uint8)))
    assert len(segmented.clusters) == 6
    for candidate in segmented.candidates:
        x, y, w, h = candidate.box
        assert x >= 0 and y >= 0 and x + w <= crop.shape[1] and y + h <= crop.shape[0], candidate.box
