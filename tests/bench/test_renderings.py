"""bench/renderings.py's pen: a digit re-drawn with a pen thinner than MNIST's brush stays the digit it was."""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def renderings():
    with pytest.MonkeyPatch.context() as patch:  # as tests/app/test_imaging.py imports it, for the module
        patch.syspath_prepend(str(REPO_ROOT / "bench"))
        yield importlib.import_module("renderings")


def brush_nine() -> np.ndarray:
    """A 9 written with MNIST's thick brush, its loop filled in (a blob on a stem): 0..1, 100 pixels tall."""
    ink = np.zeros((100, 70), np.uint8)
    cv2.circle(ink, (35, 28), 22, 255, -1)  # the head, filled
    cv2.line(ink, (52, 40), (40, 95), 255, 12)  # the stem, a stroke 12% of the height
    return ink.astype(np.float32) / 255


def test_a_filled_loop_stays_filled_at_a_pens_width(renderings):
    """Found in bench/read_accuracy.py's misread photos: MNIST test digits whose loops the writer filled in
    (the 9s 209 and 9642, the 8s 8065 and 947, the 3 5623) lost their loops under the old pen (the skeleton of
    a blob is a line), and were drawn as a hook, an open curve or a 6: marks nobody would read as the digit.
    Now the blob stays a blob, shrunk as the strokes are, and the strokes are still the pen's width."""
    ink = brush_nine()
    pen = renderings._thinned(ink, 0.05) > 0.5
    head = cv2.circle(np.zeros_like(ink, np.uint8), (35, 28), 14, 1, -1) > 0  # well inside the blob
    assert pen[head].mean() > 0.9, pen[head].mean()
    stem = pen[75:90].sum(axis=1)  # the stem's width, row by row, below the head
    assert np.median(stem) <= 9, stem  # a 5% pen (5 pixels, with the blur's fringe), not the brush's 12


def test_strokes_without_blobs_are_only_the_pens(renderings):
    """A ring drawn with the brush (no blob): only its skeleton's re-drawing, as before."""
    ring = cv2.circle(np.zeros((100, 100), np.uint8), (50, 50), 38, 255, 12).astype(np.float32) / 255
    pen = renderings._thinned(ring, 0.05) > 0.5
    assert not pen[35:65, 35:65].any()  # the hole stays open
    assert pen.sum() < 0.6 * (ring > 0.5).sum()  # thinner than the brush
