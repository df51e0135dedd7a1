"""A closer look (POST /read): a number written small in a large upload, a whole phone frame of a sheet (3,000-4,000
pixels, the writing 50-120 pixels tall), is read in the number's 1,024-pixel work frame with its digits under 30
pixels tall: its strokes a pixel or two wide, the paper's blots as large as they. The first reading says where the
writing is; that part of the upload is read again at its own resolution (`region`, for
`segment.segment_number(..., region=)`)."""

from __future__ import annotations

import math

import numpy as np

from app.imaging.number_ink import NUMBER_SIDE, Region
from app.imaging.reading import Reading
from app.imaging.segment import Segmented

SMALL_WRITING = 30  # the reading's digits a median of fewer work pixels tall than this ...
MORE_PIXELS = 1.5  # ... where the upload has this many times more pixels each way than its work frame: read again
AROUND = 2.0  # the region: the reading's digits' box, and this many times their tallest height on every side


def region(segmented: Segmented, reading: Reading) -> Region | None:
    """Where to look closer at an upload's number (in its pixels as shown), or None: written large enough, or the upload
    has no more pixels to give there."""
    if not reading.digits or segmented.area is None:
        return None
    scale = min(segmented.scale)
    heights = [digit.box[3] for digit in reading.digits]
    if scale < MORE_PIXELS or float(np.median(heights)) / segmented.scale[1] >= SMALL_WRITING:
        return None
    around = AROUND * max(heights)
    # within the part of the upload the first look read (a sheet on a desk: its page, whose edge was read as a 1)
    x, y, width, height = segmented.area
    left = max(x, math.floor(min(d.box[0] for d in reading.digits) - around))
    top = max(y, math.floor(min(d.box[1] for d in reading.digits) - around))
    right = min(x + width, math.ceil(max(d.box[0] + d.box[2] for d in reading.digits) + around))
    bottom = min(y + height, math.ceil(max(d.box[1] + d.box[3] for d in reading.digits) + around))
    # the region's own work frame must be finer than the first look's
    if max(1.0, max(right - left, bottom - top) / NUMBER_SIDE) * MORE_PIXELS > scale:
        return None
    return left, top, right - left, bottom - top
