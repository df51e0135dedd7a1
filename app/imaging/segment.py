"""A handwritten number into candidate digits (`segment_number`): ink found as for one digit (canvas,
clean or photo path), its pieces grouped into clusters of overlapping columns (app.imaging.clusters), and each
cluster cut by staircase paths severing the least ink from points across its top and bottom, every stretch between
two cuts that could be a digit offered to the model. app.imaging.reading then picks the reading from the
model's probabilities.

Pure numpy and OpenCV: the route sends all candidates of a request to the model as one batch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from app.errors import TooManyCandidates, TooManyDigits
from app.imaging import mnist
from app.imaging.clusters import MIN_DIGIT_HEIGHT, find_clusters
from app.imaging.cuts import cut_paths
from app.imaging.decode import DEFAULT_MAX_PIXELS
from app.imaging.line import line_image
from app.imaging.number_ink import NUMBER_SIDE, NumberInk, Region, find_ink
from app.imaging.photo import mnist_strokes

__all__ = ["NUMBER_SIDE", "Candidate", "Cluster", "Segmented", "number_line", "segment_number"]
WIDE_PIECE = 0.9  # pieces wider than this share of their height are touching digits, which cuts divide
# ... and in a second look (app.imaging.reading.finer_cuts_wanted: the line reader counts more digits than the
# reading found), pieces wider than this share: two narrow digits touching (a 7 and a 1) are cut too. Not in
# the first look: on the dev photos (seeds 11 and 7, 300 per row) cutting them always read separated numbers
# 0 and 1.0 points worse, with twice the candidates; as a second look, touching 79.3 -> 80.7% and 77.3 ->
# 79.7%, separated the same.
FINER_WIDE_PIECE = 0.6
TIP = 0.3  # of the height: a wide piece's part flatter than this may be a neighbour's tip (a 7's bar)
MAX_PART_WIDTH = 1.5  # ... and at most this many heights wide
CANDIDATES_PER_DIGIT = 80  # an image may offer at most this many candidates per digit it may hold
# The photo path closes gaps of 2.5% of its frame, where a digit is 25-60% of the frame tall.
DIGIT_GAP = 0.06  # so a digit's own gaps are closed up to this share of its height
# A part's strokes are closed and thickened (`photo.mnist_strokes`) at most this many pixels on its longer side, then
# fitted to MNIST's 20: the work grows with the fourth power of the side (a 700-pixel part cost 0.2 s, at 320 10 ms).
# Writing is a tenth of that; parts this large are a page's edge or a shadow's taken for ink, on a whole phone frame
# (a frame of an outside check took 26 s). No part of bench/read_accuracy.py's seed-0 separated canvases and scans is
# this large (at most 277 pixels); its touching rows' whole clusters are, and its table reads the same (bench/README.md).
LARGEST_PART = 320


@dataclass(frozen=True)
class Candidate:
    """One possible digit: the 28x28 image the model sees and its box (x, y, w, h) in upload pixels."""

    pixels: np.ndarray
    box: tuple[int, int, int, int]
    # With segment_number(..., masks=True): (top, left, mask) of its ink in work-frame pixels (training
    # labels each candidate by the digits' ink it holds: training.wrong_cuts), before any turn (app.imaging.level).
    mask: tuple[int, int, np.ndarray] | None = None


@dataclass(frozen=True)
class Cluster:
    """Ink whose columns overlap, between cut points 0..`points` - 1 (its two ends included): `parts`
        maps (from, to) cut points to the indices of that stretch's candidates (its wide pieces cut along the
    paths, or whole); `skips` to the ink (in writing
        heights' worth) of stretches too short to be a digit, which a reading may leave out."""

    points: int
    parts: dict[tuple[int, int], list[int]]
    skips: dict[tuple[int, int], float]


@dataclass(frozen=True)
class Segmented:
    """The candidates of one image, its clusters left to right, or why it holds no digit."""

    candidates: list[Candidate] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    reason: str | None = None
    # The number's ink as one line (app.imaging.line), for a version that also reads whole lines
    line: np.ndarray | None = field(default=None, repr=False)
    scale: tuple[float, float] = (1.0, 1.0)  # upload pixels per work pixel (x, y), as NumberInk's
    area: Region | None = None  # the part of the upload read, in its pixels (all of it; a sheet on a desk: its page)

    @property
    def pixels(self) -> np.ndarray:
        """(n, 28, 28) float32: every candidate, for one model call."""
        if not self.candidates:
            return np.zeros((0, mnist.SIDE, mnist.SIDE), np.float32)
        return np.stack([c.pixels for c in self.candidates])


def segment_number(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_digits: int = 32,
    max_candidates: int | None = None,
    masks: bool = False,
    wide_piece: float = WIDE_PIECE,
    region: Region | None = None,
) -> Segmented:
    """Candidate digits of a number written on one line. Raises BadImage, ImageTooLarge, and
    TooManyDigits when the image holds more than `max_digits` separate clusters of ink, or would offer more
    candidates than CANDIDATES_PER_DIGIT per digit (or `max_candidates`): a bound on the work it may cost.
    Pieces wider than `wide_piece` of their height are cut (FINER_WIDE_PIECE: the second look); the line is
    the same whatever `wide_piece` is. With `region`, that part of the upload at full size (`number_ink.find_ink`)."""
    found = find_ink(data, max_pixels, region)
    if isinstance(found, str):
        return Segmented(reason=found)
    clusters, line_height = find_clusters(found.mask, found.ink, max_digits)
    if not clusters:
        return Segmented(reason="no_digit")
    if len(clusters) > max_digits:
        raise TooManyDigits(f"{len(clusters)} or more digits; a reading may have at most {max_digits}")
    area = found.box(0, 0, found.mask.shape[1], found.mask.shape[0])
    out = Segmented(line=_line(found.ink, clusters, line_height), scale=found.scale, area=area)
    limit = CANDIDATES_PER_DIGIT * max_digits
    limit = limit if max_candidates is None else min(limit, max_candidates)
    for columns, rows, labels in clusters:
        cluster = _cut_cluster(
            found, columns, rows, labels, line_height, out.candidates, masks, limit, max_digits, wide_piece
        )
        out.clusters.append(cluster)
    return out


def number_line(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """Only the line image `segment_number` gives its reading's line reader (None: no digit found), without
    cutting candidates: what training.line_reader trains on."""
    found = find_ink(data, max_pixels)
    if isinstance(found, str):
        return None
    clusters, line_height = find_clusters(found.mask, found.ink, 32)
    return _line(found.ink, clusters, line_height) if clusters else None


def _line(ink: np.ndarray, clusters: list[tuple[slice, slice, np.ndarray]], line_height: float) -> np.ndarray:
    """The clusters' ink (only their pieces) as the line reader's image."""
    x0, x1 = clusters[0][0].start, clusters[-1][0].stop
    kept = np.zeros((ink.shape[0], x1 - x0), bool)
    for columns, rows, labels in clusters:
        kept[rows, columns.start - x0 : columns.stop - x0] |= labels > 0
    return line_image(ink[:, x0:x1] * kept, line_height)


def _cut_cluster(
    found: NumberInk,
    columns: slice,
    rows: slice,
    labels: np.ndarray,
    line_height: float,
    candidates: list[Candidate],
    masks: bool = False,
    limit: int = CANDIDATES_PER_DIGIT * 32,
    max_digits: int = 32,
    wide_piece: float = WIDE_PIECE,
) -> Cluster:
    """The cluster's candidates: whole, and every stretch between two cut paths that could be one digit (at
    most a digit and a half wide, as tall as writing). A piece no wider than a digit goes wholly to the side
    of a cut holding its centre; wider pieces (touching digits) are cut along the path, and also offered
    whole. A stretch too
    short to be a digit may be skipped."""
    window = found.ink[rows, columns]
    inked = labels > 0
    ink = window * inked
    height, width = labels.shape
    count = int(labels.max()) + 1
    wide, centre_rows, centre_cols, first_col, last_col = _pieces_shape(labels, count, wide_piece)
    pieces = int((centre_cols >= 0).sum())
    cuts = cut_paths(ink, pieces, height)
    paths = [np.zeros(height, np.int64), *cuts, np.full(height, width, np.int64)]
    centres = [float(np.median(path)) for path in paths]
    parts: dict[tuple[int, int], list[int]] = {}
    skips: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, bytes], int] = {}  # a part's ink: its candidate
    same: dict[tuple[tuple[int, ...], bytes], int] = {}  # a candidate's box and image: its candidate
    per_height = float(ink.sum()) * line_height / max(width, 1)  # ink of a stretch one writing's height wide
    shortest = MIN_DIGIT_HEIGHT * line_height
    last = len(paths) - 1
    room = round(DIGIT_GAP * height) + 2
    for start in range(last):
        reach = centres[start] + MAX_PART_WIDTH * height
        ends = [end for end in range(start + 1, last) if centres[end] <= reach]  # centres ascend
        for end in [*ends, last]:  # the cluster whole is always offered: a reading needs a path to its end
            whole = start == 0 and end == last
            if not whole and centres[end] - centres[start] > MAX_PART_WIDTH * height:
                continue
            lo, hi = int(paths[start].min()), int(paths[end].max())
            x = np.arange(lo, hi)[None, :]
            region = (x >= paths[start][:, None]) & (x < paths[end][:, None])
            inside = (paths[start][centre_rows] <= centre_cols) & (centre_cols < paths[end][centre_rows])
            # Work on the columns the stretch and the whole pieces it takes span: far fewer than the cluster's.
            # (with room around it, so that closing a photo's gaps sees no edge: the part must not touch one)
            c0 = max(0, min(lo, int(first_col[inside].min(initial=lo))) - room)
            c1 = min(width, max(hi, int(last_col[inside].max(initial=hi - 1)) + 1) + room)
            local = labels[:, c0:c1]
            cut = (~wide & inside)[local]
            tips = region & wide[labels[:, lo:hi]]
            cut[:, lo - c0 : hi - c0] |= tips
            options = [cut]
            if (wide & inside).any():  # or those wide pieces whole: a 7 whose bar reaches over its neighbour
                # ... when what that leaves out of the stretch is at most a flat tip of its neighbour: not a
                # whole digit of a wide piece whose centre lies beyond the cut (lost from every reading).
                left_out = region & wide[labels[:, lo:hi]] & ~inside[labels[:, lo:hi]]
                if not left_out.any() or np.ptp(np.flatnonzero(left_out.any(axis=1))) + 1 < TIP * height:
                    options.append(inside[local])
            if tips.any() and np.ptp(np.flatnonzero(tips.any(axis=1))) + 1 < TIP * height:
                options.append((~wide & inside)[local])  # or without that bar, a flat tip of the neighbour
            indices = []
            for option, part in enumerate(options):
                part_rows, part_cols = np.nonzero(part)
                if not len(part_rows) or np.ptp(part_rows) + 1 < shortest:
                    if option == 0:
                        skips[(start, end)] = float(ink[:, c0:c1][part].sum()) / max(per_height, 1e-6)
                    if not whole:
                        continue
                if not whole and np.ptp(part_cols) + 1 > MAX_PART_WIDTH * height:
                    continue
                key = (c0, np.packbits(part).tobytes())
                if key not in seen:  # paths through one gap hold the same ink: one candidate
                    x0 = columns.start + c0
                    candidate = _candidate(found, part, window[:, c0:c1], x0, rows.start, part_rows, part_cols)
                    if masks:
                        top, left = int(part_rows.min()), int(part_cols.min())
                        crop = part[top : part_rows.max() + 1, left : part_cols.max() + 1]
                        candidate = replace(candidate, mask=found.unturned(rows.start + top, x0 + left, crop))
                    seen[key] = same.setdefault((candidate.box, candidate.pixels.tobytes()), len(candidates))
                    if seen[key] == len(candidates):  # not the same image as another's
                        candidates.append(candidate)
                        if len(candidates) > limit:  # a bound on the work an image may cost
                            raise TooManyCandidates(
                                f"more ink than {max_digits} digits' worth (over {limit} candidate digits); "
                                f"a reading may have at most {max_digits} digits"
                            )
                indices.append(seen[key])
            if indices:
                parts[(start, end)] = sorted(set(indices))
    return Cluster(len(paths), parts, skips)


def _pieces_shape(labels: np.ndarray, count: int, wide_piece: float = WIDE_PIECE) -> tuple[np.ndarray, ...]:
    """By label: whether the piece is wider than `wide_piece` of its height (touching digits, which cuts
    divide); the row and column of its centre (the side of a cut it goes to when it is not); its first and
    last column. One pass over the pixels, however many pieces."""
    rows, cols = np.nonzero(labels)
    which = labels[rows, cols]
    big = np.iinfo(np.int64).max
    first_row, first_col = np.full(count, big), np.full(count, big)
    last_row, last_col = np.full(count, -1), np.full(count, -1)
    np.minimum.at(first_row, which, rows)
    np.minimum.at(first_col, which, cols)
    np.maximum.at(last_row, which, rows)
    np.maximum.at(last_col, which, cols)
    pixels = np.maximum(np.bincount(which, minlength=count), 1)
    centre_rows = np.round(np.bincount(which, weights=rows, minlength=count) / pixels).astype(np.int64)
    centre_cols = np.round(np.bincount(which, weights=cols, minlength=count) / pixels).astype(np.int64)
    present = last_col >= 0
    centre_cols[~present] = -1  # no piece: never inside a stretch
    wide = present & (last_col - first_col + 1 > wide_piece * (last_row - first_row + 1))
    first_col[~present], last_col[~present] = 0, 0
    return wide, centre_rows, centre_cols, first_col, last_col


def _candidate(
    found: NumberInk,
    part: np.ndarray,
    ink: np.ndarray,
    x0: int,
    y0: int,
    part_rows: np.ndarray,
    part_cols: np.ndarray,
) -> Candidate:
    """A part as the model sees it (as one digit on its path), with its box in upload pixels."""
    mask, ink, part_height = _at_most(part.astype(np.uint8), ink, part_rows, part_cols, LARGEST_PART)
    if found.photo:
        # Bridge the gaps in a photo's strokes (faint ink, or a printed line's ink taken out): this digit's only.
        gap = max(3, round(DIGIT_GAP * part_height) | 1)
        closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap)))
        strokes = mnist_strokes(closed, ink)
    else:  # a pen's thin strokes are brought to MNIST's width too: the model doubts thin ones
        strokes = mnist_strokes(mask, ink)
    top, bottom = int(part_rows.min()), int(part_rows.max()) + 1
    left, right = int(part_cols.min()), int(part_cols.max()) + 1
    return Candidate(mnist.fit_and_centre(strokes), found.box(x0 + left, y0 + top, x0 + right, y0 + bottom))


def _at_most(
    mask: np.ndarray, ink: np.ndarray, rows: np.ndarray, cols: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """A part's mask and ink, and its height, as they are; or, when it is over `side` pixels on its longer side, its box
    (with room round it for closing its gaps) shrunk to that size by area, the mask where it covers a quarter of a pixel."""
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    extent = max(height, width)
    if extent <= side:
        return mask, ink, float(height)
    room = round(DIGIT_GAP * extent) + 2
    top, left = max(int(rows.min()) - room, 0), max(int(cols.min()) - room, 0)
    box = (slice(top, int(rows.max()) + 1 + room), slice(left, int(cols.max()) + 1 + room))
    scale = side / extent
    crop_mask = mask[box]
    crop_ink = ink[box] * (cv2.dilate(crop_mask, np.ones((3, 3), np.uint8)) > 0)  # as `mnist_strokes` keeps it
    size = (max(1, round(crop_mask.shape[1] * scale)), max(1, round(crop_mask.shape[0] * scale)))
    shrunk = cv2.resize(crop_mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small_ink = cv2.resize(crop_ink.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return (shrunk >= 0.25).astype(np.uint8), small_ink, float(height * scale)
