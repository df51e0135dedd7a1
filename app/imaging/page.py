"""A sheet of paper photographed on a desk (POST /read): the page found in the number's work frame, so that only the page
is read (`page_inside`). Around a page, the photo path's steps took the desk for paper: the light's flattening, whose
closing spans a share of the frame, was pulled down along the page's edge, and a band of the page inside it and the
edge itself stood out as ink, read as strings of 1s (an outside check's sheets on a desk: 1 of 100 read right).

The page is the largest bright piece of the frame (Otsu's threshold, its holes filled: the writing) when it is clearly
a page on something darker: a tenth to 95% of the frame, convex (a sheet, not a patch of light), the frame's edge dark along half
its length or more (a desk round the page, not a digit's strokes round the paper in its loop), the rest of the frame
at most half as bright, and the step between them sharp (a page's edge, not a shadow's soft one). Then the largest
upright rectangle inside it, a margin in from its edge, is read as if it were the frame."""

from __future__ import annotations

import cv2
import numpy as np

PAGE_SHARE = (0.1, 0.95)  # the page's share of the frame
CONVEX = 0.95  # the page's area against its convex hull's
DESK_EDGE = 0.5  # the dark (Otsu's) along at least this share of the frame's edge
DESK = 0.5  # the rest of the frame's median level at most this share of the page's
SHARP = 0.6  # the step within 4 pixels either side of the page's edge: at least this share of the whole step
INSIDE = 0.015  # of the frame's shorter side: the rectangle read is at least this far inside the page's edge
NEAR = 4  # pixels either side of the page's edge where its step is measured


def page_inside(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the largest upright rectangle within a page lying on a darker desk in a work frame
    (float 0..1), a margin in from the page's edge; or None (no such page: paper fills the frame, or a shadow)."""
    gray = np.clip(frame * 255, 0, 255).astype(np.uint8)
    _, bright = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if count < 2:
        return None
    largest = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    contours, _ = cv2.findContours(largest, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    page = np.zeros_like(largest)
    cv2.drawContours(page, [outline], -1, 1, -1)
    share = float(page.mean())
    if not PAGE_SHARE[0] <= share <= PAGE_SHARE[1]:
        return None
    dark = 1 - bright
    edge = np.concatenate([dark[0], dark[-1], dark[:, 0], dark[:, -1]])
    if float(edge.mean()) < DESK_EDGE:  # the desk is round the page (not a digit's strokes round the paper in its loop)
        return None
    if page.sum() < CONVEX * cv2.contourArea(cv2.convexHull(outline)):
        return None
    lit, desk = float(np.median(frame[page > 0])), float(np.median(frame[page == 0]))
    if desk > DESK * lit:
        return None
    ring = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * NEAR + 1, 2 * NEAR + 1))
    just_inside = frame[(page > 0) & (cv2.erode(page, ring) == 0)]
    just_outside = frame[(page == 0) & (cv2.dilate(page, ring) > 0)]
    if float(np.median(just_inside)) - float(np.median(just_outside)) < SHARP * (lit - desk):
        return None
    margin = max(3, round(INSIDE * min(frame.shape)))
    inner = cv2.erode(page, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1)))
    return _rectangle_within(inner)


def _rectangle_within(region: np.ndarray) -> tuple[int, int, int, int] | None:
    """An upright rectangle within `region` (uint8, convex): its bounding box, the side with the most pixels outside it
    moved in a pixel at a time until none is."""
    rows, cols = np.nonzero(region)
    if not len(rows):
        return None
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    while bottom - top > 2 and right - left > 2:
        outside = [
            int((region[top, left:right] == 0).sum()),
            int((region[bottom - 1, left:right] == 0).sum()),
            int((region[top:bottom, left] == 0).sum()),
            int((region[top:bottom, right - 1] == 0).sum()),
        ]
        side = int(np.argmax(outside))
        if outside[side] == 0:
            return left, top, right - left, bottom - top
        if side == 0:
            top += 1
        elif side == 1:
            bottom -= 1
        elif side == 2:
            left += 1
        else:
            right -= 1
    return None
