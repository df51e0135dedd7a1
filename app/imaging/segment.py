"""A handwritten number into candidate digits: ink found as for one digit (canvas, clean or photo path),
its pieces grouped into clusters of overlapping columns, and each cluster offered to the model whole and
cut at the places where its ink is thinnest (`segment_number`). The model's probabilities of every
candidate then pick the reading (`read_number`): the cuts whose digits it is most sure of.

Pure numpy and OpenCV: the route sends all candidates of a request to the model as one batch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from app.errors import TooManyDigits
from app.imaging import ink as clean
from app.imaging import mnist
from app.imaging.decode import DEFAULT_MAX_PIXELS, LOSSY_FORMATS, channels, composite, decode, shrink
from app.imaging.digit import ALPHA_VARIES, MIN_PHOTO_SIDE
from app.imaging.photo import mnist_strokes, paper_ink, work_frame

NUMBER_SIDE = 1024  # work frame's longer side: twelve digits in a row keep ~80 pixels each
CLEAN_MASK = 0.25  # clean-path ink (peak 1.0) at least this strong makes a digit's pieces
SIGNIFICANT = 0.15  # pieces with this share of the biggest piece's ink set the writing's height
DIRT = 0.15  # pieces smaller than this share of the writing's height are dots of dirt
BAR = 0.25  # pieces less tall than this share of their width ...
SOLID = 0.6  # ... and with ink in this share of their box are bars, not digits
OFF_LINE = 0.9  # pieces whose middle is this many heights off the line's are not part of the number
LONE_PIECE = 0.35  # a piece overlapping no other is a digit only when at least this share of the height
CUT_ASPECT = 1.0  # pieces wider than this share of their height are tried with cuts
CUT_SPACING = 0.1  # candidate cuts at least this share of the height apart
CUT_STEP = 0.15  # and, beside the thinnest columns, every this share of the height
CUT_MARGIN = 0.12  # and this far inside the cluster's ends
CUT_BEND = 0.2  # a cut path may wander this share of the height either side of its column
WHOLE_PIECE = 0.8  # a piece with this share of its ink on one side of a cut goes wholly to that side,
TIP = 0.3  # when what reaches over the cut is flatter than this share of the height
MIN_PART_HEIGHT = 0.4  # a cut's part is a digit only when this share of the cluster's height tall
MIN_DIGIT_HEIGHT = 0.6  # ... and this share of the writing's height (a 4's or an 8's loose stroke is not)
MAX_PART_WIDTH = 1.3  # ... and at most this many heights wide
MAX_CUTS = 48  # candidate cuts per cluster, at most
EMPTY = -1  # a stretch between two cuts with no ink of its own
# The model is sure of many shapes no digit has, so a reading's score (the sum of its digits' log
# probabilities) also weighs what handwriting seldom does. Each digit's width against its height, as a
# log: median and robust spread measured on the MNIST test set (ink above 30%), the spread widened by a
# quarter (at least 0.25) for slant. A 1 is narrow; the others are 0.7-0.9 as wide as tall.
ASPECT_MEDIAN = np.array([-0.11, -0.92, -0.11, -0.22, -0.22, -0.11, -0.29, -0.29, -0.32, -0.36])
ASPECT_SPREAD = np.maximum(np.array([0.17, 0.47, 0.17, 0.2, 0.2, 0.27, 0.21, 0.21, 0.24, 0.23]) * 1.25, 0.25)
ASPECT_WEIGHT = 0.5  # of that shape's log-likelihood against the model's log probability
PIECES_DOUBT = 3.0  # a digit made of two big pieces side by side (most are one stroke, or touch)
CUT_DOUBT = 0.7  # each stroke a cut crosses (touching digits meet in one)
DIGIT_BONUS = 1.0  # each digit read (against the product of probabilities' bias to fewer digits)
BIG_PIECE = 0.5  # of the cluster's height: pieces this tall (and significant) count as big
# The photo path closes gaps of 2.5% of its frame, where a digit is 25-60% of the frame tall.
DIGIT_GAP = 0.06  # so a digit's own gaps are closed up to this share of its height


@dataclass(frozen=True)
class Candidate:
    """One possible digit: the 28x28 image the model sees and its box (x, y, w, h) in upload pixels."""

    pixels: np.ndarray
    box: tuple[int, int, int, int]
    aspect: float  # width against height of its ink
    pieces: int = 1  # the cluster's big pieces it holds most of


@dataclass(frozen=True)
class Cluster:
    """Ink whose columns overlap, between cut points 0..`points` - 1 (its two ends included): `parts`
    maps (from, to) cut points to the index of that stretch's candidate (EMPTY: no ink of its own)."""

    points: int
    parts: dict[tuple[int, int], int]
    strokes_cut: list[int]  # by each cut point: the strokes its path crosses (0 through a gap)


@dataclass(frozen=True)
class Segmented:
    """The candidates of one image, its clusters left to right, or why it holds no digit."""

    candidates: list[Candidate] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    reason: str | None = None

    @property
    def pixels(self) -> np.ndarray:
        """(n, 28, 28) float32: every candidate, for one model call."""
        if not self.candidates:
            return np.zeros((0, mnist.SIDE, mnist.SIDE), np.float32)
        return np.stack([c.pixels for c in self.candidates])


@dataclass(frozen=True)
class ReadDigit:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Reading:
    digits: list[ReadDigit]
    reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)

    @property
    def confidence(self) -> float | None:
        """That of the least certain digit: a reading is as right as its weakest digit."""
        return min((d.confidence for d in self.digits), default=None)


@dataclass(frozen=True)
class _Ink:
    mask: np.ndarray  # uint8 pieces of strokes
    ink: np.ndarray  # float32 strength, 0 on paper
    photo: bool  # strokes brought to MNIST's width as on the photo path
    scale: tuple[float, float]  # upload pixels per work pixel (x, y)


def segment_number(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_digits: int = 32) -> Segmented:
    """Candidate digits of a number written on one line. Raises BadImage, ImageTooLarge, and
    TooManyDigits when the image holds more than `max_digits` separate clusters of ink."""
    found = _find_ink(data, max_pixels)
    if isinstance(found, str):
        return Segmented(reason=found)
    clusters, line_height = _clusters(found.mask, found.ink)
    if not clusters:
        return Segmented(reason="no_digit")
    if len(clusters) > max_digits:
        raise TooManyDigits(f"{len(clusters)} or more digits; a reading may have at most {max_digits}")
    out = Segmented()
    for columns, rows, labels in clusters:
        out.clusters.append(_cut_cluster(found, columns, rows, labels, line_height, out.candidates))
    return out


def read_number(segmented: Segmented, probabilities: np.ndarray) -> Reading:
    """The reading whose digits the model is most sure of: per cluster, the cuts that maximise the product
    of their digits' probabilities. `probabilities` has a row per candidate, in order."""
    if segmented.reason is not None:
        return Reading([], segmented.reason)
    aspect = np.log(np.array([max(c.aspect, 1e-3) for c in segmented.candidates]))
    pieces = np.array([c.pieces for c in segmented.candidates])
    # Each candidate's digit: the model's probability weighed by how usual the candidate's shape is for it.
    shape = -0.5 * ASPECT_WEIGHT * ((aspect[:, None] - ASPECT_MEDIAN) / ASPECT_SPREAD) ** 2
    scores = np.log(np.maximum(probabilities, 1e-9)) + shape
    best = scores.argmax(axis=1)
    log_p = scores.max(axis=1, initial=-np.inf) - PIECES_DOUBT * np.maximum(pieces - 1, 0)
    digits: list[ReadDigit] = []
    for cluster in segmented.clusters:
        # Best path through the cut points (a shortest-path DP over a DAG ordered left to right).
        score = np.full(cluster.points, -np.inf)
        back = np.zeros(cluster.points, np.int64)
        score[0] = 0.0
        for (start, end), index in sorted(cluster.parts.items(), key=lambda item: item[0][1]):
            gain = 0.0 if index == EMPTY else log_p[index] + DIGIT_BONUS
            total = score[start] + gain - CUT_DOUBT * cluster.strokes_cut[end]
            if total > score[end]:
                score[end], back[end] = total, start
        path, point = [], cluster.points - 1
        while point > 0:
            path.append(cluster.parts[(int(back[point]), point)])
            point = int(back[point])
        for index in reversed([i for i in path if i != EMPTY]):
            candidate = segmented.candidates[index]
            digits.append(ReadDigit(int(best[index]), float(probabilities[index, best[index]]), candidate.box))
    return Reading(digits)


def _find_ink(data: bytes, max_pixels: int) -> _Ink | str:
    """The ink of an upload as `digit.prepare` finds it, at the number's work size; or the no-digit reason."""
    image = decode(data, max_pixels)
    gray, alpha = channels(image)
    height, width = gray.shape
    gray, alpha = shrink(gray, NUMBER_SIDE), None if alpha is None else shrink(alpha, NUMBER_SIDE)
    canvas = alpha is not None and float(np.ptp(alpha)) > ALPHA_VARIES
    if canvas and alpha is not None:
        gray = composite(gray, alpha)
    if canvas or min(gray.shape) < MIN_PHOTO_SIDE or clean.flat_border(gray):
        strokes = clean.clean_ink(gray, lossy=image.format in LOSSY_FORMATS)
        if strokes is None:
            return "no_ink"
        mask = (strokes >= CLEAN_MASK).astype(np.uint8)
        return _Ink(mask, strokes.astype(np.float32), False, (width / gray.shape[1], height / gray.shape[0]))
    frame = work_frame(gray, NUMBER_SIDE)
    paper = paper_ink(frame)
    if paper.reason is not None:
        return paper.reason
    return _Ink(paper.mask, paper.ink, True, (width / frame.shape[1], height / frame.shape[0]))


def _clusters(mask: np.ndarray, ink: np.ndarray) -> tuple[list[tuple[slice, slice, np.ndarray]], float]:
    """Clusters of pieces whose columns overlap, left to right, as (columns, rows, piece labels in that
    window; 0 for background and for pieces of other clusters), and the writing's height. Dots of dirt,
    bars and marks off the line are left out."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return [], 0.0
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)
    left, top = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    width, height = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    mass, area = mass[1:], stats[1:, cv2.CC_STAT_AREA]
    # What is left of a printed line or a shadow's edge: a long solid band (ink fills most of each column).
    bar = (height < BAR * width) & (area > SOLID * width * height)
    if bar.all():
        return [], 0.0
    significant = (mass >= SIGNIFICANT * mass[~bar].max()) & ~bar
    line_height = float(np.median(height[significant]))
    middle = top + height / 2
    line_middle = float(np.median(middle[significant]))
    keep = (np.maximum(width, height) >= DIRT * line_height) & ~bar
    keep &= np.abs(middle - line_middle) < OFF_LINE * line_height  # marks above or below the line
    right = left + width
    overlaps = (left[:, None] < right[None, :]) & (left[None, :] < right[:, None])
    np.fill_diagonal(overlaps, False)
    # A small piece on its own (a hyphen, a dot, what is left of a printed line) is not a digit.
    keep &= (height >= LONE_PIECE * line_height) | (overlaps & keep[None, :]).any(axis=1)
    pieces = np.flatnonzero(keep)
    if not len(pieces):
        return [], 0.0
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
    out = []
    for group in groups:
        members = np.array(group)
        x0, x1 = int(left[members].min()), int(right[members].max())
        y0, y1 = int(top[members].min()), int((top + height)[members].max())
        window = labels[y0:y1, x0:x1]
        local = np.where(np.isin(window, members + 1), window, 0)
        out.append((slice(x0, x1), slice(y0, y1), local))
    return out, line_height


def _cut_cluster(
    found: _Ink, columns: slice, rows: slice, labels: np.ndarray, line_height: float, candidates: list[Candidate]
) -> Cluster:
    """The cluster's candidates: whole, and every stretch between two candidate cuts that could be a digit."""
    window = found.ink[rows, columns]
    ink = window * (labels > 0)
    height, width = labels.shape
    paths = [np.zeros(height, np.int64)] + _cut_paths(ink, labels) + [np.full(height, width, np.int64)]
    parts: dict[tuple[int, int], int] = {}
    x_index = np.arange(width)[None, :]
    centres = [float(np.median(path)) for path in paths]
    count = int(labels.max()) + 1
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)
    tall, wide = np.zeros(count, np.int64), np.zeros(count, bool)
    for label in np.unique(labels[labels > 0]):
        tall[label] = np.ptp(np.flatnonzero((labels == label).any(axis=1))) + 1
        wide[label] = np.ptp(np.flatnonzero((labels == label).any(axis=0))) + 1 > CUT_ASPECT * tall[label]
    big = (mass >= SIGNIFICANT * mass.max()) & (tall >= BIG_PIECE * height)
    big[0] = False
    for start in range(len(paths) - 1):
        for end in range(start + 1, len(paths)):
            whole = start == 0 and end == len(paths) - 1
            if not whole and centres[end] - centres[start] > MAX_PART_WIDTH * height + 2 * CUT_BEND * height:
                continue  # far wider than a digit
            region = (x_index >= paths[start][:, None]) & (x_index < paths[end][:, None])
            part, share = _assign(labels, ink, region, wide)
            if not part.any():
                parts[(start, end)] = EMPTY  # only a tip of a neighbour: the reading may pass over it
                continue
            part_rows, part_cols = np.nonzero(part)
            too_short = np.ptp(part_rows) + 1 < max(MIN_PART_HEIGHT * height, MIN_DIGIT_HEIGHT * line_height)
            if not whole and (too_short or np.ptp(part_cols) + 1 > MAX_PART_WIDTH * height):
                continue
            parts[(start, end)] = len(candidates)
            candidate = _candidate(found, part, window, columns.start, rows.start, part_rows, part_cols)
            candidates.append(replace(candidate, pieces=int((big & (share >= 0.5)).sum())))
    if (0, len(paths) - 1) not in parts:  # the reading needs a path through the cluster
        parts[(0, len(paths) - 1)] = len(candidates)
        candidates.append(_candidate(found, labels > 0, window, columns.start, rows.start, *np.nonzero(labels)))
    return Cluster(len(paths), parts, [_strokes_crossed(labels, path) for path in paths])


def _strokes_crossed(labels: np.ndarray, path: np.ndarray) -> int:
    """How many runs of ink a cut path crosses, top to bottom, in pieces it divides into two tall parts (a
    flat tip left on one side, such as a 7's bar reaching over its neighbour, goes with its piece)."""
    height, width = labels.shape
    crossed = labels[np.arange(height), np.clip(path, 0, width - 1)] * (path < width)
    left = np.arange(width)[None, :] < path[:, None]
    tip = TIP * height
    divided = {
        label
        for label in np.unique(crossed[crossed > 0])
        if min(_rows_spanned((labels == label) & left), _rows_spanned((labels == label) & ~left)) >= tip
    }
    on = np.isin(crossed, list(divided)) if divided else np.zeros(height, bool)
    return int(on[0]) + int((on[1:] & ~on[:-1]).sum())


def _cut_paths(ink: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Cut paths top to bottom (a column per row), left to right: through the gaps between pieces, and, in
    a piece wider than a digit, from its thinnest columns (and at even steps) along paths of least ink."""
    height, width = ink.shape
    profile = np.convolve((labels > 0).sum(axis=0).astype(np.float64), np.ones(3) / 3, mode="same")
    columns: list[int] = [int(x) for x in np.flatnonzero(profile == 0) if 0 < x < width - 1]
    columns += [x for x in _between_pieces(labels, ink) if 0 < x < width - 1]
    for label in range(1, int(labels.max()) + 1):  # pieces wider than a digit: touching digits
        rows, cols = np.nonzero(labels == label)
        if not len(cols):
            continue
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        tall = bottom - top
        if right - left <= CUT_ASPECT * tall:
            continue
        own = np.convolve(
            (labels[top:bottom, left:right] == label).sum(axis=0).astype(np.float64), np.ones(3) / 3, "same"
        )
        margin = CUT_MARGIN * tall
        lows = [
            x
            for x in range(1, right - left - 1)
            if own[x] <= own[x - 1] and own[x] < own[x + 1] and margin <= x <= right - left - margin
        ]
        columns += [left + x for x in sorted(lows, key=lambda x: own[x])]
        # Thick strokes that touch can be thicker than a digit's own: cuts are tried at even steps too.
        columns += [left + round(x) for x in np.arange(margin, right - left - margin, CUT_STEP * tall)]
    chosen: list[int] = []
    spacing = CUT_SPACING * height
    for x in columns:  # gaps first, then the thinnest columns, each far enough from those already chosen
        if len(chosen) < MAX_CUTS and all(abs(x - c) >= spacing for c in chosen):
            chosen.append(x)
    bend = max(1, round(CUT_BEND * height))
    return [_least_ink_path(ink, x, bend) for x in sorted(chosen)]


def _between_pieces(labels: np.ndarray, ink: np.ndarray) -> list[int]:
    """Columns just beside each big piece and between neighbouring ones (left to right by their centres):
    slanted digits whose columns overlap, and a 1 under a 7's bar, are cut there."""
    count = int(labels.max()) + 1
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)
    big = [label for label in range(1, count) if mass[label] >= SIGNIFICANT * mass.max()]
    if len(big) < 2:
        return []
    spans = []
    for label in big:
        cols = np.flatnonzero((labels == label).any(axis=0))
        spans.append((float(cols.mean()), int(cols.min()), int(cols.max())))
    spans.sort()
    between = [round((spans[i][2] + spans[i + 1][1]) / 2) for i in range(len(spans) - 1)]
    return between + [x for _, first, last in spans for x in (first - 2, last + 3)]


def _least_ink_path(ink: np.ndarray, column: int, bend: int) -> np.ndarray:
    """The path from top to bottom that crosses the least ink, a column either way per row, within
    `bend` columns of `column` (straying costs a little, so a path through paper stays straight)."""
    height, width = ink.shape
    x0, x1 = max(0, column - bend), min(width, column + bend + 1)
    cost = ink[:, x0:x1] + 0.01 * np.abs(np.arange(x0, x1) - column)[None, :] / bend
    total = cost[0].copy()
    moves = np.zeros(cost.shape, np.int64)
    for row in range(1, height):
        options = np.stack([np.r_[np.inf, total[:-1]], total, np.r_[total[1:], np.inf]])
        step = options.argmin(axis=0)
        moves[row] = step - 1
        total = options[step, np.arange(len(total))] + cost[row]
    path = np.zeros(height, np.int64)
    path[-1] = int(total.argmin())
    for row in range(height - 1, 0, -1):
        path[row - 1] = path[row] + moves[row, path[row]]
    return path + x0


def _assign(labels: np.ndarray, ink: np.ndarray, region: np.ndarray, wide: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cluster's ink in `region`, and the share of each piece's ink that is there. A piece across the
    region's border goes wholly to the side with most of its ink, unless it is `wide` (touching digits):
    then it is cut along the border, except that a flat tip reaching over goes with the rest of its piece
    (a 7's bar over its neighbour)."""
    count = int(labels.max()) + 1
    total = np.bincount(labels.ravel(), weights=ink.ravel() + 1e-3, minlength=count)
    inside = np.bincount(labels[region], weights=ink[region] + 1e-3, minlength=count)
    share = inside / np.maximum(total, 1e-9)
    tip = TIP * labels.shape[0]
    keep = np.zeros(count, bool)
    keep[1:] = share[1:] >= 1 - 1e-9
    part = keep[labels]
    for label in np.flatnonzero((share > 0) & ~keep):
        if label == 0:
            continue
        piece = labels == label
        if not wide[label]:
            if share[label] >= 0.5:
                part |= piece
        elif share[label] >= WHOLE_PIECE and _rows_spanned(piece & ~region) < tip:
            part |= piece
        elif share[label] > 1 - WHOLE_PIECE or _rows_spanned(piece & region) >= tip:
            part |= piece & region
    return part, share


def _rows_spanned(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0


def _candidate(
    found: _Ink,
    part: np.ndarray,
    ink: np.ndarray,
    x0: int,
    y0: int,
    part_rows: np.ndarray,
    part_cols: np.ndarray,
) -> Candidate:
    """A part as the model sees it (as one digit on its path), with its box in upload pixels."""
    mask = part.astype(np.uint8)
    if found.photo:
        # Bridge the gaps that removing printed lines cut into strokes (within this digit only).
        gap = max(3, round(DIGIT_GAP * (np.ptp(part_rows) + 1)) | 1)
        closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap)))
        strokes = mnist_strokes(closed, ink)
    else:
        strokes = np.where(cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0, ink, 0).astype(np.float32)
        strokes /= max(float(strokes.max()), 1e-6)  # a faint digit among strong ones is stretched as if alone
    top, bottom = int(part_rows.min()), int(part_rows.max()) + 1
    left, right = int(part_cols.min()), int(part_cols.max()) + 1
    sx, sy = found.scale
    box = (
        math.floor((x0 + left) * sx),
        math.floor((y0 + top) * sy),
        max(1, round((right - left) * sx)),
        max(1, round((bottom - top) * sy)),
    )
    return Candidate(mnist.fit_and_centre(strokes), box, (right - left) / (bottom - top))
