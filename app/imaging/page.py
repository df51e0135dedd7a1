"""A sheet of paper photographed on a desk (POST /read): the page found in the number's work frame, so that only the page
is read (`page_inside`). Around a page, the photo path's steps took the desk for paper: the light's flattening, whose
closing spans a share of the frame, was pulled down along the page's edge, and a band of the page inside it and the
edge itself stood out as ink, read as strings of 1s (an outside check's sheets on a desk: 1 of 100 read right).

The page is the largest bright piece of the frame (dark marks thinner than EDGE_CLOSE of it closed over first: ink and
printed lines; fine bright grain opened away: a desk's texture), taken as its convex hull (a printed line nearly across
the sheet leaves no slit), when it is clearly a page on something darker: a
tenth to 95% of the frame, convex (a sheet, not a patch of light), the frame's edge dark along half its length or more
(a desk round the page, not a digit's strokes round the paper in its loop), the rest of the frame at most 0.7 as
bright (a beige desk), and its edge sharp nearly all round (a page's edge, not a shadow's soft one): at each point of it, the light a
few pixels either side steps by most of what it does a little further out. Bright is above Otsu's threshold; when no
page is found so, above Otsu's threshold of the pixels below it: a shadow across the sheet takes its shaded part below
the first, and its lit part alone, edged on one side by the shadow's soft edge, is no page. Then the largest upright
rectangle inside the page, a margin in from its edge, is read as if it were the frame.

Two outside checks' 1,325 images (whole phone frames and crops; /tmp/outside4 and /tmp/outside5, in-process as the
route reads): a page in 200 of them before the second threshold, the hull and the edge's sharpness point by point, 224
now. Of the first check's 725, 11 read right that were not (sheets under a shadow, a notebook's margin line), 3 misread
that were read right (two with a leading 1, faint ink along the rectangle's edge; squared paper read as no digit). The
second's 600 read the same; the other checks' 4,733 /read images one worse (a 64x116 crop of a rounded box: "33" read
"1331"); no page in any of bench/read_accuracy.py's seed-0 scans and photos.

The desk at most 0.7 as bright as the page rather than half (an outside check's beige desks, 0.68, round a sheet
filling most of the frame: the desk was taken for paper and the page's edge beside the number read as a 1, "29" read
"291"): of those 1,325 images and the other checks' 5,267 crops, 50 page decisions changed (48 no page -> a page, 2 another
page), 10 readings mended and none broken (1,215 -> 1,220 of the 1,325 right; the 4,733 /read crops 4,568 -> 4,569,
and 4 of the other checks' /predict crops read as numbers); still no page in the table's seed-0 scans and photos.

When neither threshold finds a page, the page's edge may (`_page_by_edges`): light across desk and sheet alike (a shadow
over both, a lamp's light on the desk) left the shaded page darker than the lit desk, so that no one level parted them,
and the page's edges were read as 1s ("6274070" read as 74 digits, "229022" as "1") or refused as too many digits. The
page is then the largest piece of the frame that sharp edges enclose (Canny's, on the frame with ink and printed lines
closed over), taken when it is convex, the frame's edge dark round it, the desk beside its edge at most 0.8 as bright as
the page beside it, and its edge a sharp step nearly all round, held further out (not a printed line). The same two
outside checks' 1,325 images: 18 more pages (no page decided before was changed), 9 readings mended and 2 broken (a
notebook's margin line beside the number, and a number at a squared page's top edge, read as no digit: both pages rightly
found), 659 -> 666 of the first's 725, the second's 600 the same; the other checks' 5,267 crops: 18 more pages, no reading
changed. About 10 ms more per whole frame where no page is found by threshold (40 ms where a piece is checked).

Dark marks are closed over before the thresholds too: a notebook's margin line, two red lines down the whole sheet,
parted the page, and the largest part, left of the margin, was taken for it; the number right of the margin was left
out ("70" read as no ink). Of the 1,325 images, 74 page decisions changed (most by a pixel; no page now in 4 small form
crops, whose box's inside was taken for one, and in one whole frame, read as before), 2 readings mended ("70"; "3319863",
read "44444") and none broken: 675 -> 677 of the first's 725; the 4,733 crops: 19 decisions changed, no reading; still
no page in the table's seed-0 scans and photos."""

from __future__ import annotations

import cv2
import numpy as np

PAGE_SHARE = (0.1, 0.95)  # the page's share of the frame
CONVEX = 0.95  # the largest bright piece's area against its convex hull's
DESK_EDGE = 0.5  # the dark (below the threshold) along at least this share of the frame's edge
DESK = 0.7  # the rest of the frame's median level at most this share of the page's (a beige desk: 0.68)
SPECKLE = 0.01  # of the frame's shorter side: bright grain this fine is not a page (opened away)
# A point of the page's edge is sharp when the step between the pixels NEAR either side of it (past its blur) is at least
# SHARP of the step between those FAR either side (a shadow's edge softened over 3% of a frame has half its step
# further out) and at least STEP of the page's level over the desk's; each side's level the mean over a WINDOW round it.
SHARP, STEP = 0.6, 0.3
NEAR, FAR = (2, 6), (8, 16)  # pixels from the edge
WINDOW = 21  # pixels
SHARP_EDGE = 0.9  # the share of the page's edge (where it is not the frame's) that must be sharp
INSIDE = 0.015  # of the frame's shorter side: the rectangle read is at least this far inside the page's edge
EDGE_CLOSE = 0.015  # of the frame's shorter side: dark marks thinner than this are closed over (ink, printed lines)
# When no one level parts page and desk (`_page_by_edges`): Canny's thresholds EDGE_STEPS of the frame's spread of light,
# edges' gaps up to EDGE_GAP pixels closed, and the desk beside the page's edge at most EDGE_DESK as bright as the page
# beside it, the step held further out.
EDGE_STEPS = (0.16, 0.32)
EDGE_GAP = 7
EDGE_DESK = 0.8
EDGE_HELD = 0.5  # the step FAR either side of a page's edge at least this share of the step NEAR it


def page_inside(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the largest upright rectangle within a page lying on a darker desk in a work frame
    (float 0..1), a margin in from the page's edge; or None (no such page: paper fills the frame, or a shadow)."""
    gray = np.clip(frame * 255, 0, 255).astype(np.uint8)
    side = max(3, round(EDGE_CLOSE * min(gray.shape)) | 1)  # ink and printed lines (a margin line parts the page)
    closed = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    first, bright = cv2.threshold(closed, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    page = _page(frame, bright)
    below = closed[closed < first]
    if page is None and len(below):  # a shadow across the sheet: its shaded part is below the first threshold
        second, _ = cv2.threshold(below.reshape(1, -1), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        page = _page(frame, (closed > second).astype(np.uint8))
    if page is None:  # light across desk and sheet alike: no one level parts them, but the page's edge does
        page = _page_by_edges(frame, closed, gray <= first)
    if page is None:
        return None
    margin = max(3, round(INSIDE * min(frame.shape)))
    inner = cv2.erode(page, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1)))
    return _rectangle_within(inner)


def _page(frame: np.ndarray, bright: np.ndarray) -> np.ndarray | None:
    """The page (uint8 mask: the convex hull of the largest `bright` piece) when it is clearly one; else None."""
    side = max(3, round(SPECKLE * min(bright.shape)) | 1)  # a desk's bright grain and specks, and their bridges
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if count < 2:
        return None
    largest = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    page = _hull(largest)
    if page is None or not _desk_round(1 - bright):
        return None
    lit, desk = float(np.median(frame[page > 0])), float(np.median(frame[page == 0]))
    if desk > DESK * lit:
        return None
    if _sharp_share(_edge_steps(frame, page), STEP * (lit - desk)) < SHARP_EDGE:
        return None
    return page


def _page_by_edges(frame: np.ndarray, closed: np.ndarray, dark: np.ndarray) -> np.ndarray | None:
    """The page as the largest piece of the frame that sharp edges enclose, when it is clearly one (uint8 mask); else None.
    Dark marks (ink, printed lines) are closed over first (`closed`); a shadow's soft edge is no edge at Canny's
    thresholds (EDGE_STEPS of the frame's spread of light). Light across desk and sheet alike (a shadow over both, a
    lamp's spot on the desk) leaves no one level that parts them, so the levels are measured beside the page's edge:
    the desk there at most EDGE_DESK of the page's light, and the edge sharp nearly all round, a step held further out
    (EDGE_HELD: a printed line is dark a few pixels across, and the paper between two rules is no page). The frame's
    edge must be `dark` (below Otsu's threshold) along DESK_EDGE of it, as for `_page`: a large digit's loop, its
    strokes round it, is no page. `closed`: the frame as 8-bit levels, its dark marks closed over (`page_inside`'s)."""
    smooth = cv2.GaussianBlur(closed, (0, 0), 1.5)
    spread = float(np.percentile(smooth, 98) - np.percentile(smooth, 2))
    edges = cv2.Canny(smooth, EDGE_STEPS[0] * spread, EDGE_STEPS[1] * spread, L2gradient=True)
    edges[0], edges[-1], edges[:, 0], edges[:, -1] = 255, 255, 255, 255  # a page's corner a pixel from the frame's edge
    gap = np.ones((EDGE_GAP, EDGE_GAP), np.uint8)
    enclosed = (cv2.dilate(edges, gap) == 0).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(enclosed, connectivity=4)
    areas = stats[1:, cv2.CC_STAT_AREA]
    for piece in 1 + np.argsort(-areas, kind="stable"):
        if areas[piece - 1] < PAGE_SHARE[0] * closed.size:
            break
        page = _hull(cv2.dilate((labels == piece).astype(np.uint8), gap))  # out to the edge again
        if page is None or not _desk_round(dark & (page == 0)):
            continue
        steps = _edge_steps(frame, page)
        near_in, near_out = steps[0], steps[1]
        if not len(near_in) or float(np.median(near_out / np.maximum(near_in, 1e-6))) > EDGE_DESK:
            continue
        if _sharp_share(steps, STEP * float(np.median(near_in - near_out)), EDGE_HELD) >= SHARP_EDGE:
            return page
    return None


def _hull(piece: np.ndarray) -> np.ndarray | None:
    """The convex hull of a bright `piece` (uint8 mask) when it is convex (a sheet, not a patch of light) and a
    PAGE_SHARE of the frame; else None."""
    contours, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(outline)
    filled = np.zeros_like(piece)
    cv2.drawContours(filled, [outline], -1, 1, -1)
    if filled.sum() < CONVEX * cv2.contourArea(hull):
        return None
    page: np.ndarray = np.zeros_like(piece)
    cv2.fillConvexPoly(page, hull, 1)
    if not PAGE_SHARE[0] <= float(page.mean()) <= PAGE_SHARE[1]:
        return None
    return page


def _desk_round(dark: np.ndarray) -> bool:
    """Whether the frame's edge is `dark` (the desk) along DESK_EDGE of it or more: the desk is round the page (not a
    digit's strokes round the paper in its loop)."""
    edge = np.concatenate([dark[0], dark[-1], dark[:, 0], dark[:, -1]])
    return float(edge.mean()) >= DESK_EDGE


def _sharp_share(steps: tuple[np.ndarray, ...], least: float, held: float | None = None) -> float:
    """The share of the page's edge that is sharp (SHARP, with `least` for STEP's), from `_edge_steps`; with `held`,
    that is a step held further out too (the step FAR either side at least `held` of the step NEAR it)."""
    near_in, near_out, far_in, far_out = steps
    if not len(near_in):
        return 0.0
    near, far = near_in - near_out, far_in - far_out
    sharp = (near >= least) & (near >= SHARP * far)
    if held is not None:
        sharp &= far >= held * near
    return float(sharp.mean())


def _edge_steps(frame: np.ndarray, page: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At each point of the page's edge (where it is not the frame's), the light NEAR inside and outside it and FAR
    inside and outside it: each a mean over a WINDOW round the point."""

    def mean_over(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weight = cv2.boxFilter(mask.astype(np.float32), -1, (WINDOW, WINDOW), normalize=False)
        total = cv2.boxFilter(frame * mask, -1, (WINDOW, WINDOW), normalize=False)
        return total / np.maximum(weight, 1e-6), weight > 0

    inside = {by: _moved(page, -by) for by in (*NEAR, *FAR)}
    outside = {by: _moved(page, by) for by in (*NEAR, *FAR)}
    near_in, has_near_in = mean_over(inside[NEAR[0]] & ~inside[NEAR[1]])
    near_out, has_near_out = mean_over(outside[NEAR[1]] & ~outside[NEAR[0]])
    far_in, has_far_in = mean_over(inside[FAR[0]] & ~inside[FAR[1]])
    far_out, has_far_out = mean_over(outside[FAR[1]] & ~outside[FAR[0]])
    # where the frame ends within FAR of the edge (a box cropped close), the near pixels stand for the far ones
    far_in, far_out = np.where(has_far_in, far_in, near_in), np.where(has_far_out, far_out, near_out)
    edge = (page > 0) & ~_moved(page, -1) & has_near_in & has_near_out
    edge[0], edge[-1], edge[:, 0], edge[:, -1] = False, False, False, False  # the frame's own edge
    return near_in[edge], near_out[edge], far_in[edge], far_out[edge]


def _moved(page: np.ndarray, by: int) -> np.ndarray:
    """The page grown (`by` > 0) or shrunk (< 0) by `by` pixels, as a boolean mask."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * abs(by) + 1, 2 * abs(by) + 1))
    return (cv2.dilate(page, kernel) if by > 0 else cv2.erode(page, kernel)) > 0


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
