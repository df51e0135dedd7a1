"""bench/frame_time.py: each kind of whole frame is a 12-megapixel JPEG with the number on it, and its crop (the
baseline) is the frame's own pixels round the number's ink."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.bench import load_bench
from tests.conftest import FIXTURE_MNIST


@pytest.mark.parametrize("kind", ["sheet", "shadow", "ruled", "desk"])
def test_a_frame_holds_the_number_its_crop_shows(kind):
    bench = load_bench("frame_time")
    with np.load(FIXTURE_MNIST) as data:
        digits = data["x_test"][:4]
    frame, crop = (
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        for jpeg in bench.frame_and_crop(digits, kind, np.random.default_rng(3))
    )
    assert frame.shape == bench.FRAME
    # the crop: the number's strokes (darker than its paper) with paper on every side, a small part of the frame
    assert 0.005 < crop.size / frame.size < 0.1
    paper = np.median(crop)
    dark = crop < 0.6 * paper
    rows, cols = np.nonzero(dark)
    assert dark.mean() > 0.01
    assert rows.min() > 0.1 * crop.shape[0] and rows.max() < 0.9 * crop.shape[0]
    assert cols.min() > 0.05 * crop.shape[1] and cols.max() < 0.95 * crop.shape[1]
    # ... found in the frame where it was cut from
    match = cv2.matchTemplate(frame, crop, cv2.TM_CCOEFF_NORMED)
    assert match.max() > 0.8
