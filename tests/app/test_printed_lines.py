"""Printed lines out of a photo's ink mask (app.imaging.photo.remove_lines), pen strokes kept."""
from __future__ import annotations

import cv2
import numpy as np

from app.imaging.photo import remove_lines


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
