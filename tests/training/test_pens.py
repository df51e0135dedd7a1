"""Pens for written training numbers (training.pens): the skeleton is checked against scikit-image's
maintained `skeletonize`, and a re-drawn digit keeps its shape at the pen's width."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize

from training.pens import redrawn, skeleton


def glyphs() -> list[np.ndarray]:
    """Thick written shapes: the ten digits in two fonts, a ring and a crossing (no MNIST needed)."""
    shapes = []
    for font in (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX):
        for digit in "0123456789":
            image = np.zeros((90, 70), np.uint8)
            cv2.putText(image, digit, (8, 75), font, 2.6, 255, 9)
            shapes.append(image > 0)
    ring = cv2.circle(np.zeros((80, 80), np.uint8), (40, 40), 28, 255, 8) > 0
    cross = cv2.line(cv2.line(np.zeros((80, 80), np.uint8), (5, 5), (75, 75), 255, 7), (75, 5), (5, 75), 255, 7) > 0
    return [*shapes, ring, cross]


def near(a: np.ndarray, b: np.ndarray) -> float:
    """The share of a's pixels within one pixel of b's."""
    return float((a & (cv2.dilate(b.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)).sum() / a.sum())


@pytest.mark.parametrize("index", range(22))
def test_skeleton_matches_scikit_images(index):
    shape = glyphs()[index]
    ours, theirs = skeleton(shape), skeletonize(shape)
    assert ours.sum() > 0
    assert not (ours & ~shape).any()  # inside the shape
    assert min(near(ours, theirs), near(theirs, ours)) > 0.85
    # the same topology: pieces and holes (pieces of the background)
    for mask_of in (lambda s: s, lambda s: ~s):
        count = [cv2.connectedComponents(mask_of(s).astype(np.uint8), connectivity=8)[0] for s in (ours, theirs)]
        assert count[0] == count[1]
    # one pixel wide: no 2x2 block of skeleton (Zhang-Suen may leave one where two strokes cross)
    blocks = ours[:-1, :-1] & ours[1:, :-1] & ours[:-1, 1:] & ours[1:, 1:]
    assert blocks.sum() <= 1


@pytest.mark.parametrize("width", [3, 6, 10])
def test_redrawn_strokes_are_the_pens_width_along_the_same_path(width):
    ring = cv2.circle(np.zeros((120, 120), np.uint8), (60, 60), 40, 255, 14).astype(np.float32) / 255
    pen = redrawn(ring, width, softness=0)
    assert pen.dtype == np.float32 and pen.max() == 1
    ridge = skeleton(ring > 0.5)
    measured = pen.sum() / ridge.sum()  # area over length: the stroke's width
    assert abs(measured - (2 * round(width / 2) + 1)) < 1.5, measured
    assert not ((pen > 0) & (cv2.dilate(ring, np.ones((3, 3))) == 0)).any()  # inside the old stroke's reach
    soft = redrawn(ring, width, softness=0.8)
    assert ((soft > 0.05) & (soft < 0.95)).any()  # edges softened
