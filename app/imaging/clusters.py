"""A number's pieces of ink grouped into clusters (`find_clusters`, for app.imaging.segment): pieces whose columns
overlap, left to right, the writing's height taken from them, and what is not writing left out: dots of dirt, bars
(upright or at a tilt: `_column_fill`), marks off the line, strokes far taller than the writing, writing far along the
line from the number (`_one_run`), hairlines beside it (`_without_hairlines`), and stains far fainter than it (`FAINT`)."""

from __future__ import annotations

import cv2
import numpy as np

from app.errors import TooManyDigits

SIGNIFICANT = 0.15  # pieces with this share of the biggest piece's ink set the writing's height
DIRT = 0.15  # pieces smaller than this share of the writing's height are dots of dirt
BAR = 0.25  # pieces less tall than this share of their width ...
SOLID = 0.6  # ... and with ink in this share of their box are bars, not digits
BAND_FILL = 0.9  # ... or in this share of each column's span from their top pixel to their bottom one (at a tilt)
# A flat solid piece at least this share of the writing's height (from the other pieces) is digits run together, not a
# bar: a number written small in a large photo (an outside check's 2732x3642 frame, "1385604" 30 pixels tall) has its
# digits 8 pixels tall in the 1,024-pixel work frame, where they ran together past the 1 into a piece 54 wide, 12 tall
# and 70% inked, left out as a printed line's remnant: the 1 alone read, and the closer look (app.imaging.closer) then
# looked only round it ("138"). That check's 725 frames and another's 600 and 4,733 small crops: 3 change clusters;
# as the route reads, 2 mended ("1385604", and "67804669", read as no digit), the third misread either way. A comb
# field's ticks, as tall but not solid, stay a bar (without `solid`, a small crop's "514" read "4", and a notebook
# frame's "4866" as no digit). bench/read_accuracy.py's 6,000 numbers of seed 0: none changes.
RUN_TOGETHER = 0.7
OFF_LINE = 0.9  # pieces whose middle is this many heights off the line's are not part of the number
# A piece whose darkest ink is under this share of the writing's (the pieces that set its height: their median) is not
# written: a stain or a blot of the light as large as a digit, in line with a number in a whole frame a little blurred (a
# phone's focus lowers the camera noise, and so the ink's threshold, below it), was read as a confident digit ("1750"
# read "17509"). Whole frames of pages turned 0-25 degrees (a dev generator, seeds never used to tune it): 146 -> 162 of
# 180, none read wrong that were right. bench/read_accuracy.py's 6,000 numbers of seed 0: 2 change clusters, each read
# as before; seeds 7 and 11 (1,800 each): none.
FAINT = 0.3
HAIRLINE = 2.0  # pixels: a cluster no deeper than this (a line 1-3 pixels wide) beside a number written ...
HAIRLINE_SHARE = 0.35  # ... this share as deep or deeper is a hairline, not a digit (what is left of printed lines)
TALL = 3.0  # pieces over this many heights of the writing tall are not part of it (a margin line crossing it)
FAR_APART = 3.0  # writing further than this many heights along the line from the rest is another run (a smudge)
LONE_PIECE = 0.35  # a piece overlapping no other is a digit only when at least this share of the height
# A digit is at least this share of the writing's height (a short cluster is offered whole), or as wide (a 2
# written flat): a narrower and shorter piece overlapping no other's columns is not one (a stroke lifted off a
# digit, blurred loose in a photo: fitted to 28x28, a perfect 1).
MIN_DIGIT_HEIGHT = 0.5
PIECES_PER_DIGIT = 8  # an image may hold at most this many pieces of ink (past dirt) per digit it may hold


def find_clusters(
    mask: np.ndarray, ink: np.ndarray, max_digits: int
) -> tuple[list[tuple[slice, slice, np.ndarray]], float]:
    """Clusters of pieces whose columns overlap, left to right, as (columns, rows, piece labels in that
    window; 0 for background and for pieces of other clusters), and the writing's height. Dots of dirt,
    bars, marks off the line, pieces far fainter than the writing (FAINT), pieces over TALL heights tall, writing far
    along the line from the number (`_one_run`) and hairlines beside it (`_without_hairlines`) are left out."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return [], 0.0
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)
    left, top = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    width, height = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    mass, area = mass[1:], stats[1:, cv2.CC_STAT_AREA]
    # What is left of a printed line or a shadow's edge: a long flat band, its ink filling most of its box, or nearly
    # all of each column's own span (a band at a tilt, whose box, a few rows deep, is mostly paper: `_column_fill`).
    solid = area > SOLID * width * height
    bar = (height < BAR * width) & (solid | (_column_fill(labels, count) >= BAND_FILL))
    if bar.all():
        return [], 0.0
    _, line_height = _writing(mass, height, bar)
    bar &= ~(solid & (height >= RUN_TOGETHER * line_height))  # ... but digits run together (`RUN_TOGETHER`) are not
    significant, line_height = _writing(mass, height, bar)
    middle = top + height / 2
    line_middle = float(np.median(middle[significant]))
    keep = (np.maximum(width, height) >= DIRT * line_height) & ~bar
    peak = _piece_max(labels, count, mask, ink)
    keep &= peak >= FAINT * float(np.median(peak[significant]))
    keep &= height <= TALL * line_height  # (a notebook's margin line across a closer look: "92249814" -> "192249814")
    keep &= np.abs(middle - line_middle) < OFF_LINE * line_height  # marks above or below the line
    right = left + width
    # A small piece on its own (a hyphen, a dot, what is left of a printed line) is not a digit. Whether a
    # kept piece's columns overlap another's, by a sweep left to right (a matrix of all pairs would cost
    # gigabytes for an image of ten thousand dots).
    kept = np.flatnonzero(keep)
    kept = kept[np.argsort(left[kept], kind="stable")]
    overlapping = np.zeros(len(keep), bool)
    if len(kept) > 1:
        starts, ends = left[kept], right[kept]
        overlapping[kept[1:]] = starts[1:] < np.maximum.accumulate(ends)[:-1]  # with one before it
        overlapping[kept[:-1]] |= starts[1:] < ends[:-1]  # with the next one (sorted: the nearest)
    shortest = MIN_DIGIT_HEIGHT * line_height
    keep &= ((height >= LONE_PIECE * line_height) & ((height >= shortest) | (width >= shortest))) | overlapping
    pieces = np.flatnonzero(keep)
    if not len(pieces):
        return [], 0.0
    if len(pieces) > PIECES_PER_DIGIT * max_digits:
        raise TooManyDigits(f"{len(pieces)} marks; a reading may have at most {max_digits} digits")
    order = pieces[np.argsort(left[pieces])]
    groups: list[list[int]] = []
    reach = -1
    for piece in order:  # sweep left to right: a piece starting before the cluster's right end joins it
        if groups and left[piece] < reach:
            groups[-1].append(int(piece))
            reach = max(reach, int(right[piece]))
        else:
            groups.append([int(piece)])
            reach = int(right[piece])
    # specks and dashes stacked up (what is left of printed lines at the paper's edge) are no cluster
    groups = [group for group in groups if height[group].max() >= LONE_PIECE * line_height]
    groups = _one_run(groups, left, right, mass, line_height)
    groups = _without_hairlines(groups, mask, labels, count)
    out = []
    for group in groups:
        members = np.array(group)
        x0, x1 = int(left[members].min()), int(right[members].max())
        y0, y1 = int(top[members].min()), int((top + height)[members].max())
        window = labels[y0:y1, x0:x1]
        local = np.where(np.isin(window, members + 1), window, 0)
        out.append((slice(x0, x1), slice(y0, y1), local))
    return out, line_height


def _writing(mass: np.ndarray, height: np.ndarray, bar: np.ndarray) -> tuple[np.ndarray, float]:
    """The pieces that set the writing's height (SIGNIFICANT of the most ink of any but the bars), and that height."""
    significant = (mass >= SIGNIFICANT * mass[~bar].max()) & ~bar
    return significant, float(np.median(height[significant]))


def _piece_max(labels: np.ndarray, count: int, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each piece's (labels 1 to count - 1) largest value over its pixels (its strongest ink, its deepest pixel)."""
    inked = mask > 0
    largest = np.zeros(count, np.float32)
    np.maximum.at(largest, labels[inked], values[inked])
    return largest[1:]


def _column_fill(labels: np.ndarray, count: int) -> np.ndarray:
    """For each piece (labels 1 to count - 1), the share of its columns' spans (from its top pixel to its bottom one in
    each column) that its ink fills: of a band, upright or at a tilt, nearly all; of digits, less (a loop's hole, two
    strokes in a column). An outside check's whole frames of notebook paper, a number written small: rules the line
    finder left in the ink, pieces a few pixels thick and hundreds long at a degree or two, were not bars by their
    boxes, held the most ink and so set the writing's height, and the number's digits were taken for strokes too tall
    to be writing ("4036641" read "2", "51109739" refused for too many marks). As bars: that check's 725 images
    666 -> 674 right (notebook paper 69 -> 77 of 80), another's 600: 580 -> 581, the two before them, 4,733 small
    crops, 4,578 -> 4,580 (a comb field's teeth); none read wrong that were right.
    16 of bench/read_accuracy.py's 6,000 numbers of seed 0 change clusters (photos); every one reads as before."""
    rows, cols = np.nonzero(labels)
    key = labels[rows, cols].astype(np.int64) * labels.shape[1] + cols  # (piece, column), in row order
    order = np.argsort(key, kind="stable")
    key, rows = key[order], rows[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    filled = np.diff(np.r_[starts, len(key)])
    spans = np.maximum.reduceat(rows, starts) - np.minimum.reduceat(rows, starts) + 1
    piece = key[starts] // labels.shape[1]
    ink = np.bincount(piece, weights=filled, minlength=count)
    reach = np.bincount(piece, weights=spans, minlength=count)
    fill: np.ndarray = ink[1:] / np.maximum(reach[1:], 1)
    return fill


def _without_hairlines(groups: list[list[int]], mask: np.ndarray, labels: np.ndarray, count: int) -> list[list[int]]:
    """The clusters less those drawn in hairlines beside a number written with a pen: no pixel of theirs more than
    HAIRLINE pixels from the paper, and none more than HAIRLINE_SHARE of the number's strokes' depth (the upper
    quartile of its clusters' deepest pixels). What is left of a squared page's grid beside its number, a pixel or two
    wide, was read as 1s ("6922" read "1111100821"). That check's 725 images: 655 -> 659 right (squared paper 56 -> 60
    of 70), another's 600 the same, the two before them, 4,733 small crops, 4,569 -> 4,578 (a comb field's teeth, a box cell's
    margin read as 1s); none read wrong that were right. No cluster of bench/read_accuracy.py's 6,000 numbers of seed 0
    (nor of seeds 7 and 11, 1,800 each) changes: its pens draw strokes deeper than HAIRLINE. About 3 ms per 1,024-pixel
    frame (a distance transform)."""
    if len(groups) < 2:
        return groups
    deepest_piece = _piece_max(labels, count, mask, cv2.distanceTransform(mask, cv2.DIST_L2, 5))
    deepest = np.array([deepest_piece[np.asarray(group)].max() for group in groups])
    strokes = float(np.percentile(deepest, 75))
    hairline = (deepest <= HAIRLINE) & (deepest <= HAIRLINE_SHARE * strokes)
    return [group for group, thin in zip(groups, hairline) if not thin]


def _one_run(
    groups: list[list[int]], left: np.ndarray, right: np.ndarray, mass: np.ndarray, line_height: float
) -> list[list[int]]:
    """The clusters (lists of pieces, left to right) of one run of writing: where some lie more than FAR_APART of the
    writing's height from the ones before them, the run with the most ink. An outside check's chalk boards had smudges
    on the number's line, 8 of its heights from it, read as digits of it ("1430" read "143080"); its whole frames of
    squared paper, slivers of the page's edge and of its grid far from the number, read as strings of 1s. That check's
    725 images: 642 -> 654 right, another's 600: 578 -> 580, none read wrong that were right. bench/read_accuracy.py's
    numbers are written at most half a height apart: no cluster of its 6,000 numbers of seed 0 (nor of seeds 7 and 11,
    1,800 each) changes, with this or with TALL."""
    if len(groups) < 2:
        return groups
    runs: list[list[list[int]]] = [[groups[0]]]
    for group in groups[1:]:
        gap = int(left[group].min()) - max(int(right[g].max()) for g in runs[-1])
        if gap > FAR_APART * line_height:
            runs.append([group])
        else:
            runs[-1].append(group)
    return max(runs, key=lambda run: float(sum(mass[g].sum() for g in run)))
