"""Pens for written training numbers: a digit's strokes re-drawn as a pen of another width would draw them
(its skeleton, then a round nib along it), where eroding the brush's strokes would shorten and break them.

The skeleton is Zhang and Suen's thinning (Communications of the ACM 27(3), 1984), whole rows at a time in
numpy; tests/training/test_pens.py compares it with scikit-image's `skeletonize`."""

from __future__ import annotations

import cv2
import numpy as np

# The 8 neighbours of a pixel clockwise from the one above it (P2 .. P9 in Zhang and Suen's paper).
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def skeleton(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide skeleton of a boolean mask, its shape's topology kept (Zhang-Suen thinning)."""
    image = np.pad(mask.astype(bool), 1)
    while True:
        changed = False
        for step in (0, 1):
            height, width = image.shape
            p = [image[1 + dy : height - 1 + dy, 1 + dx : width - 1 + dx] for dy, dx in _NEIGHBOURS]
            centre = image[1:-1, 1:-1]
            count = sum(n.astype(np.int8) for n in p)
            # 0 -> 1 transitions around the pixel, P2 P3 ... P9 P2
            turns = sum((~p[i] & p[(i + 1) % 8]).astype(np.int8) for i in range(8))
            if step == 0:
                a, b = p[0] & p[2] & p[4], p[2] & p[4] & p[6]  # P2 P4 P6, P4 P6 P8
            else:
                a, b = p[0] & p[2] & p[6], p[0] & p[4] & p[6]  # P2 P4 P8, P2 P6 P8
            remove = centre & (count >= 2) & (count <= 6) & (turns == 1) & ~a & ~b
            if remove.any():
                centre[remove] = False  # a view: the image itself
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def redrawn(ink: np.ndarray, width: float, softness: float = 0.7) -> np.ndarray:
    """`ink` (0..1) re-drawn by a round pen `width` pixels wide along its strokes' skeleton, edges softened
    by a Gaussian of `softness` pixels: float32 0..1."""
    ridge = skeleton(ink > 0.5).astype(np.uint8)
    radius = max(0, round(width / 2))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    pen = cv2.dilate(ridge, disc).astype(np.float32)
    return np.clip(cv2.GaussianBlur(pen, (0, 0), softness), 0, 1) if softness > 0 else pen
