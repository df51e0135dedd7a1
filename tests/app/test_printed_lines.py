"""Printed lines out of a photo's ink mask (app.imaging.photo.remove_lines), pen strokes kept."""
from __future__ import annotations

import cv2
import numpy as np

from app.imaging.photo import crossings_given_back, remove_lines
from app.imaging.segment import segment_number
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"


def ruled_page_with_strokes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A wide strip of ruled paper's ink mask (lines 3 pixels thick, 32 apart, a margin line) with thin pen
    strokes across it at several slants: the mask, the lines alone, the strokes alone."""
    lines = np.zeros((352, 936), np.uint8)
    for y in range(24, 352, 32):
        cv2.line(lines, (0, y), (935, y + 2), 1, 3)
    cv2.line(lines, (220, 0), (218, 351), 1, 3)
    strokes = np.zeros_like(lines)
    for x, slant in zip(range(120, 860, 90), (-40, -20, 0, 15, 30, 45, -10, 25, 5)):
        cv2.line(strokes, (x, 130), (x + slant, 230), 1, 6)  # pen strokes 6 pixels wide, 100 tall
        cv2.ellipse(strokes, (x + 20, 160), (22, 30), slant, 0, 300, 1, 6)
    return lines | strokes, lines, strokes


def test_printed_lines_go_and_pen_strokes_stay():
    mask, lines, strokes = ruled_page_with_strokes()
    kept = remove_lines(mask, once=True)
    off_lines = (strokes > 0) & (cv2.dilate(lines, np.ones((5, 5), np.uint8)) == 0)
    # Hough also answers each printed line at slightly other angles: those copies must not erase strokes
    # (POST /read removes each line once; /predict keeps its measured single-digit behaviour).
    assert kept[off_lines].mean() > 0.97, kept[off_lines].mean()
    only_lines = (lines > 0) & (cv2.dilate(strokes, np.ones((9, 9), np.uint8)) == 0)
    assert kept[only_lines].mean() < 0.05


def test_lines_thicker_than_a_share_of_a_low_frame_are_removed_when_asked():
    # A tight photo of a number is wide and low: ruled lines 7 pixels thick are more than 3% of its 160-pixel
    # height (so by default a band, not a printed line) but less than 3% of its 480-pixel width.
    lines = np.zeros((160, 480), np.uint8)
    for y in (20, 60, 100, 140):
        cv2.line(lines, (0, y), (479, y + 1), 1, 7)
    strokes = np.zeros_like(lines)
    for x in range(60, 420, 80):
        cv2.line(strokes, (x, 45), (x + 10, 125), 1, 5)
    mask = lines | strokes
    only_lines = (lines > 0) & (cv2.dilate(strokes, np.ones((9, 9), np.uint8)) == 0)
    assert remove_lines(mask, once=True)[only_lines].mean() > 0.95  # the default keeps them
    kept = remove_lines(mask, once=True, extent=max(mask.shape))
    assert kept[only_lines].mean() < 0.1  # a row of pixels along some lines' edges may stay
    between = (strokes > 0) & (cv2.dilate(lines, np.ones((15, 15), np.uint8)) == 0)
    assert kept[between].mean() > 0.97  # the strokes between the lines stay (where they cross: app.imaging.segment)


def test_pen_strokes_crossing_a_printed_line_are_whole_again():
    # A 474x293 photo's frame (the bench's size) with ruled lines 5 pixels thick and strokes no thicker than
    # the opening that spares strokes: their pixels beside each line go with it, a gap of 9 rows. Found on
    # the bench: a "1" crossed by two lines came apart into pieces too short to be kept, "30100" read "3000".
    lines = np.zeros((293, 474), np.uint8)
    for y in range(30, 293, 40):
        cv2.line(lines, (0, y), (473, y + 1), 1, 4)
    strokes = np.zeros_like(lines)
    for x, slant in zip(range(60, 420, 80), (-10, 0, 5, 15, 25)):
        cv2.line(strokes, (x, 100), (x + slant, 200), 1, 6)  # each crosses two lines
    cv2.circle(strokes, (440, 130), 9, 1, 6)  # a 0 between two lines crosses none
    mask = lines | strokes
    unlined = remove_lines(mask, once=True)
    removed = mask & ~unlined
    assert removed[strokes > 0].any()  # the strokes were cut where they cross
    bridged = crossings_given_back(unlined, removed)
    near_strokes = cv2.dilate(strokes, np.ones((3, 3), np.uint8))
    pieces, _ = cv2.connectedComponents(bridged & near_strokes)
    assert pieces - 1 == 6  # five strokes and the 0, each whole
    only_lines = (lines > 0) & (cv2.dilate(strokes, np.ones((15, 15), np.uint8)) == 0)
    assert not bridged[only_lines].any()  # the lines themselves stay out


def test_a_one_crossed_by_ruled_lines_is_kept_in_a_photo():
    # The bench's photo (seed 11) that read "3000" for "30100": the 1 crossed two ruled lines, and its three
    # pieces were dropped as specks. Now it is one of five clusters, each digit's.
    photo = (FIXTURES / "ruled_photo_30100.jpg").read_bytes()
    segmented = segment_number(photo)
    assert len(segmented.clusters) == 5
