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
