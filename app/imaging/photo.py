"""The digit in a phone photo of paper: uneven light and shadows flattened, ink separated from paper
by its contrast with the paper around it, ruled and squared lines removed (for a number, their own ink
taken out: `subtract_lines`), the digit chosen among what is left, and its strokes brought to MNIST's
width. OpenCV does the image work (morphology, Hough lines, connected components): each step is one C++
call on a frame of at most 320 pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 320  # the photo path's frame: a digit of 25% of it is still 80 pixels tall
BACKGROUND_SHARE = 1 / 6  # closing kernel (at quarter scale) against the frame: wider than any stroke
MIN_INK = 0.06  # ink must take at least this share of the paper's light
NOISE_SIGMAS = 4.0  # ink map noise up to this many standard deviations is paper
LINE_TILT = 20  # degrees: printed lines photographed within this of horizontal or vertical
LINE_VOTES = 0.3  # Hough votes of a candidate line, against the frame's shorter side
LINE_STRETCHES = 10  # a candidate's chord across the frame is checked in this many stretches
LINE_SPAN = 0.75  # a printed line shows in at least this share of them (a written 1 in fewer)
LINE_REACH = 12  # pixels either side of a line searched for its thickness
MAX_LINES = 300  # candidates checked per direction (a squared page has ~30 lines, each a few peaks)
LINE_MAX_WIDTH = 0.03  # of the frame's shorter side (a number's: longer side): printed lines are thinner
MARGIN_LINE_WIDTH = 0.045  # of a number's frame's longer side: lines down it (a margin line) are thinner
LINE_STEPS = 4  # a printed line's ink is measured across it at steps of a quarter pixel from its centre
LINE_BAND = 2  # pixels either side of a printed line's measured width whose own ink is taken out (a number's)
POLARITY_TIE = 1.05  # dark and light features' strengths this close: a tie (`_dark_ink`),
THINNER = 1.5  # won by the polarity whose features are this many times thinner
SPECKS = 0.002  # share of the frame: less ink than this, in pieces too small for a digit, is dirt
MIN_SEED = 0.04  # a digit's largest piece is at least this share of the frame's shorter side
MIN_DIGIT = 0.08  # a digit is at least this share of the frame's shorter side tall (or wide)
EDGE_BAND = 0.02  # of the frame's shorter side: its edges are left out (a digit is written inside)
EDGE_STRENGTH = 3.0  # mean ink of a piece touching the frame's edge, in noise thresholds
SEEDS = 4  # pieces tried in turn as the digit's core
MAX_WIDE = 2.0  # a digit is at most this many times wider than tall
MAX_STROKE = 0.35  # strokes wider than this share of the digit's height make a blob, not a digit
GAP_SHARE = 0.025  # of the frame's shorter side: gaps this wide in the chosen strokes are closed
MERGE_MARGIN = 0.35  # pieces this close to the chosen piece (share of its size) belong to the digit
MIN_PIECE = 0.03  # pieces smaller than this share of the chosen piece's ink are dirt
# MNIST's strokes are 9-17% of the digit's height (2 x area / perimeter, measured on the training
# set); pens and pencils draw 3-8%. Thinner strokes are thickened to the median.
MNIST_STROKE = 0.12
THIN_STROKE = 0.09
SOLID_PERCENTILE = 75  # ink at this percentile of the strokes and darker is full strength (1.0)


@dataclass(frozen=True)
class PhotoDigit:
    """The chosen digit as a 0..1 stroke map, or why there is none."""

    ink: np.ndarray | None
    reason: str | None = None


@dataclass(frozen=True)
class PaperInk:
    """Ink separated from paper in a work frame: the stroke mask (printed lines removed), the smoothed ink
    share (0 on paper), and that ink against the local noise threshold (1 at the threshold); or why
    nothing stands out (`reason`, with an empty mask)."""

    mask: np.ndarray
    ink: np.ndarray
    strength: np.ndarray
    reason: str | None = None


def photo_digit(gray: np.ndarray) -> PhotoDigit:
    """Find the digit in a grayscale photo (float32 0..1)."""
    found = paper_ink(work_frame(gray))
    if found.reason is not None:
        return PhotoDigit(None, found.reason)
    chosen = _choose(found.mask, found.ink, found.strength)
    if chosen is None:  # paper with a few specks of dirt or noise has no ink to speak of
        return PhotoDigit(None, "no_ink" if found.mask.mean() < SPECKS else "no_digit")
    # Bridge the gaps that removing printed lines cut into strokes that crossed them.
    gap = max(3, round(GAP_SHARE * min(chosen.shape)) | 1)
    chosen = cv2.morphologyEx(chosen, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap)))
    return PhotoDigit(mnist_strokes(chosen, found.ink))


def paper_ink(gray: np.ndarray, number: bool = False) -> PaperInk:
    """The ink in a work frame (`work_frame`) of a photo or scan of paper: lighting flattened, the ink's
    polarity chosen, camera noise thresholded by the local paper level, the frame's edge and printed
    lines dropped. `number`: a number written across the frame (POST /read): the paper's closing is a share
    of the frame's shorter side (of the longer one, it would span whole digits and their loops), and the
    printed lines' own ink is taken out of the ink map (`subtract_lines`) rather than their pixels out of the
    mask. /predict keeps the single-digit behaviour, whose accuracy tables were measured with it."""
    extent = min(gray.shape) if number else None
    # Dark ink on paper, or chalk on a board: whichever way has the stronger thin strokes once the
    # lighting is flattened (before, a shadow can hold more of the frame's darkest pixels than ink).
    # Compared in absolute terms: on dark paper, a share of its little light is mostly noise.
    dark, dark_paper = flatten(gray, extent)
    light, light_paper = flatten(1 - gray, extent)
    ink, paper = (dark, dark_paper) if _dark_ink(dark * dark_paper, light * light_paper) else (light, light_paper)
    # The camera's noise is about the same in light and shade, so it is a larger share of dim paper.
    absorbed = ink * paper
    sigma = 1.4826 * float(np.median(np.abs(absorbed - np.median(absorbed))))
    smooth = cv2.GaussianBlur(ink, (0, 0), 1.0)
    low = np.maximum(NOISE_SIGMAS * sigma / np.maximum(paper, 0.05), MIN_INK)
    if float(smooth.max()) < MIN_INK:
        return PaperInk(np.zeros(gray.shape, np.uint8), smooth, smooth / low, "no_ink")
    mask = (smooth > low).astype(np.uint8)
    band = max(1, round(EDGE_BAND * min(mask.shape)))
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = 0, 0, 0, 0  # the flattening is least sure there
    if number:
        smooth, mask = subtract_lines(smooth, mask, low)
    else:
        mask = remove_lines(mask)
    return PaperInk(mask, smooth, smooth / low, None if mask.any() else "no_ink")


def _dark_ink(dark: np.ndarray, light: np.ndarray) -> bool:
    """Whether the ink is darker than the paper, from the absolute strength of the frame's dark and light
    features (`flatten`'s share times its paper level): the stronger of the two at their 99.5th percentile;
    when they are within POLARITY_TIE of each other and one's strong features are THINNER times thinner than
    the other's, that one (pen strokes are thin; the paper left between them and printed lines is wider).
    They tie because the paper between dark strokes and rules (inside a loop, between two rules) stands out of
    the light way by as much as the ink does the dark way, and a thin pen's blurred stroke loses its darkest.

    Dark ink taken for light, by strength alone -> with thickness on ties: bench/read_accuracy.py's dev photos
    (seeds 7 and 11, 1200, as /read frames them) 5 -> 0 ("49407" on ruled paper was read as 15 digits), 300 of
    its photos written with MNIST's thick brush 2 -> 1; 300 each of bench/renderings.py's single digits (as
    /predict frames them): hard grid-paper photos 21 -> 5, medium ruled 5 -> 1, light photos with MNIST's
    brush 1 -> 1, scans 0 -> 0. With the thinner always winning a tie (within 1.1), the brush's strokes lost to
    its loops' holes (light photos 25). Both ways alike: an inverted image (chalk on a board) is decided as its
    negative is."""
    strength = (float(np.percentile(dark, 99.5)), float(np.percentile(light, 99.5)))
    if max(strength) <= POLARITY_TIE * min(strength):
        thickness = (_thickness(dark, strength[0]), _thickness(light, strength[1]))
        if min(thickness) > 0 and max(thickness) >= THINNER * min(thickness):
            return thickness[0] < thickness[1]
    return strength[0] >= strength[1]


def _thickness(strength: np.ndarray, strongest: float) -> float:
    """How thick a polarity's strong features are: the 90th percentile, over the pixels holding half its
    `strongest` or more (after a 1-pixel blur), of their distance to the features' edge."""
    mask = (cv2.GaussianBlur(strength, (0, 0), 1.0) > 0.5 * strongest).astype(np.uint8)
    if not mask.any():
        return 0.0
    return float(np.percentile(cv2.distanceTransform(mask, cv2.DIST_L2, 3)[mask > 0], 90))


def work_frame(gray: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """The photo path's working copy: float32, shrunk (never enlarged) to `side` pixels along its longer side."""
    scale = side / max(gray.shape)
    if scale >= 1:
        return gray.astype(np.float32)
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def flatten(gray: np.ndarray, extent: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The share of the paper's light each pixel's ink absorbs (0 on paper whatever its lighting),
    and the paper's brightness.

    The paper's brightness is a closing (max then min filter) wider than any stroke, at quarter
    scale: strokes vanish from it while shadow edges and gradients stay where they are."""
    height, width = gray.shape
    small = cv2.resize(gray, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    side = max(3, round((max(small.shape) if extent is None else extent // 4) * BACKGROUND_SHARE) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.GaussianBlur(paper, (0, 0), side / 4)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    ink: np.ndarray = np.clip(1 - gray / np.maximum(paper, 1e-3), 0, 1)
    return ink, paper


def remove_lines(mask: np.ndarray) -> np.ndarray:
    """Drop printed lines: thin and straight, and present along most of the frame (a written 1 is not).
    Its pixels are erased except where a stroke thicker than a printed line crosses it. Printed lines are at
    most LINE_MAX_WIDTH of the frame's shorter side thick. (A number's lines: `subtract_lines`.)"""
    thin = max(1, round(LINE_MAX_WIDTH * min(mask.shape)))
    across, widest = _horizontal_lines(mask, thin)
    down, widest_down = _horizontal_lines(np.ascontiguousarray(mask.T), thin)  # vertical ones, transposed
    lines = across | down.T
    if not lines.any():
        return mask
    # Pixels of strokes thicker than the printed lines survive an opening; lines do not.
    side = max(widest, widest_down) + 3
    strokes = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    kept: np.ndarray = np.where((lines > 0) & (strokes == 0), 0, mask).astype(np.uint8)
    return kept


def subtract_lines(ink: np.ndarray, mask: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ink map with each printed line's own ink taken out, and the mask there redone against the noise
    threshold `low`: what is left is a pen's ink, where a stroke crosses a line or runs along it. A line (found
    as `remove_lines` finds them, each once, up to LINE_MAX_WIDTH of the frame's longer side thick, a tight
    photo of a number being wide and low, its lines thick against its height; lines down the frame up to
    MARGIN_LINE_WIDTH, a notebook's margin line being printed thicker than its rules) is refitted through the
    middle of its ink (`_centred`), and its ink across it measured as a profile: the median over the whole line
    at each quarter pixel from its centre (a stroke holds few of a line's pixels). Each band pixel keeps the
    share of the light the line left that its ink absorbs.

    Measured against erasing the lines' pixels from the mask (`remove_lines`, with the crossings given back, and
    a second look with thicker lines for photos read as no digit), on the dev seed 11 of bench/read_accuracy.py's
    photos (400 separated, 300 touching; `lenet5-read` v5): separated 89.8% -> 92.5% (ruled paper 87.0% -> 92.5%,
    plain 92.5% either way), touching 69.0% -> 75.3% (ruled 61.6% -> 73.6%). Erasing took the strokes along a
    line with it (a 7's bar), and thicker lines' erasing most of a digit's ink.

    Lines down the frame up to 4.5% rather than 3% of its longer side (a margin line 7 pixels thick in a
    200-pixel photo was left, and read as a 1: "84" read "184"), on the dev seeds 7 and 11 (300 separated and
    300 touching photos each, `lenet5-read` v6): separated 94.0% -> 94.7% and 95.7% either way, touching 77.3% ->
    77.7% and 79.3% either way. Not across: there the wider limit took touching numbers for printed lines (48 of
    bench/read_accuracy.py's 200 touching scans on seed 0, 19 of its 400 photos; down: none)."""
    apart = max(1, round(LINE_MAX_WIDTH * max(mask.shape)))
    out_ink, out_mask = ink.copy(), mask.copy()
    for flip in (False, True):  # lines across, then down (the arrays transposed: views)
        source, found = (ink.T, mask.T) if flip else (ink, mask)
        target, bar, threshold = (out_ink.T, out_mask.T, low.T) if flip else (out_ink, out_mask, low)
        thin = max(1, round(MARGIN_LINE_WIDTH * max(mask.shape))) if flip else apart
        for rows, inside, width in _line_paths(np.ascontiguousarray(found), thin, once=True, apart=apart):
            columns = np.flatnonzero(inside)
            if len(columns) < 2:
                continue
            reach = width // 2 + LINE_BAND
            offsets = np.arange(-reach, reach + 1)
            centre = _centred(source, rows[columns], columns, offsets)
            # every pixel of the band, by its distance from the line's centre
            y = (np.floor(centre)[:, None] + np.arange(-reach, reach + 2)[None, :]).astype(np.int64)
            x = np.broadcast_to(columns[:, None], y.shape)
            keep = (y >= 0) & (y < source.shape[0])
            y, x, distance = y[keep], x[keep], (y - centre[:, None])[keep]
            values = source[y, x]
            # the line's ink as a profile across it: the median at each quarter pixel from its centre
            step = np.round(distance * LINE_STEPS).astype(np.int64)
            order = np.argsort(step, kind="stable")
            steps, starts = np.unique(step[order], return_index=True)
            profile = [float(np.median(part)) for part in np.split(values[order], starts[1:])]
            level = np.interp(distance * LINE_STEPS, steps, profile).astype(np.float32)
            left = np.clip((values - level) / np.maximum(1.0 - level, 1e-3), 0, 1)  # ink absorbs the light left
            target[y, x] = np.minimum(target[y, x], left)
            bar[y, x] = target[y, x] > threshold[y, x]
    return out_ink, out_mask


def _centred(ink: np.ndarray, rows: np.ndarray, columns: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A line's centre (a float row) in each of `columns`, on a straight line through the middle of its ink:
    fitted to the ink's centre across the band around Hough's `rows` (which may cross a thick line aslant)."""
    at = np.clip(rows[:, None] + offsets[None, :], 0, ink.shape[0] - 1)
    weights = ink[at, columns[:, None]]
    mass = weights.sum(axis=1)
    centre = rows + (weights @ offsets) / np.maximum(mass, 1e-6)
    slope, intercept = np.polyfit(columns, centre, 1, w=np.sqrt(mass) + 1e-6)
    fitted: np.ndarray = slope * columns + intercept
    return fitted


def _horizontal_lines(mask: np.ndarray, thin: int) -> tuple[np.ndarray, int]:
    """Printed lines within LINE_TILT of horizontal (`_line_paths`), drawn as a mask, and the widest one's width."""
    drawn = np.zeros_like(mask)
    widest = 0
    lines = _line_paths(mask, thin, once=False)
    for line_width in sorted({width for _, _, width in lines}):
        points = [
            np.column_stack([np.flatnonzero(inside), rows[inside]]).astype(np.int32)
            for rows, inside, width in lines
            if width == line_width
        ]
        cv2.polylines(drawn, points, False, 1, int(line_width) + 2)
        widest = int(line_width)
    return drawn, widest


def _line_paths(
    mask: np.ndarray, thin: int, once: bool, apart: int | None = None
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Printed lines within LINE_TILT of horizontal: each as its row in every column, whether it is in the
    frame there, and its width in pixels.

    Candidates are Hough lines with enough votes, checked all at once: one is a printed line when
    the mask holds it in most stretches of its chord across the frame, and it is no wider than
    `thin` (a shadow's edge is a wide band)."""
    height, width = mask.shape
    tilt = np.radians(LINE_TILT)
    votes = round(LINE_VOTES * min(height, width))
    found = cv2.HoughLines(mask, 1, np.pi / 360, votes, min_theta=np.pi / 2 - tilt, max_theta=np.pi / 2 + tilt)
    if found is None:
        return []
    rho, theta = found.reshape(-1, 2)[:MAX_LINES].T
    xs = np.arange(width)
    # Each candidate's row in every column: x cos(theta) + y sin(theta) = rho.
    ys = np.round((rho[:, None] - xs * np.cos(theta)[:, None]) / np.sin(theta)[:, None]).astype(np.int64)
    inside = (ys >= 0) & (ys < height)
    rows = np.clip(ys, 0, height - 1)
    near = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # a pixel of tolerance either side
    covered = (near[rows, xs] > 0) & inside
    starts = np.linspace(0, width, LINE_STRETCHES + 1).astype(np.int64)[:-1]
    held = np.add.reduceat(covered, starts, axis=1)
    present = np.add.reduceat(inside, starts, axis=1)
    in_frame = present >= 0.5 * np.diff(np.append(starts, width))  # stretches where the line is in the frame
    shown = ((held >= 0.5 * present) & in_frame).sum(axis=1)
    accept = (shown >= LINE_SPAN * in_frame.sum(axis=1)) & (in_frame.sum(axis=1) >= LINE_STRETCHES // 2)
    if not accept.any():
        return []
    rows, inside = rows[accept], inside[accept]
    # Hough answers a printed line again at slightly other angles (fewer votes; candidates come by votes):
    # with `once`, a copy within `apart` (default: `thin`) of a line already kept, on average, is dropped.
    apart = thin if apart is None else apart
    kept: list[int] = []
    for index in range(len(rows)):
        if kept and once:
            both = inside[index] & inside[kept]
            distance = (np.abs(rows[index] - rows[kept]) * both).sum(axis=1)
            if ((distance < apart * both.sum(axis=1)) & (both.sum(axis=1) > 0)).any():
                continue
        kept.append(index)
    rows, inside = rows[kept], inside[kept]
    # Thickness: the median run of mask pixels across the line, where the line is in the mask.
    reach = np.arange(1, LINE_REACH + 1)
    up = mask[np.clip(rows[..., None] - reach, 0, height - 1), xs[:, None]] > 0
    below = mask[np.clip(rows[..., None] + reach, 0, height - 1), xs[:, None]] > 0
    runs = (np.cumprod(up, axis=2).sum(axis=2) + np.cumprod(below, axis=2).sum(axis=2) + 1).astype(np.float32)
    on_line = (mask[rows, xs] > 0) & inside
    runs[~on_line] = np.nan
    usable = on_line.any(axis=1)
    widths = np.full(len(rows), thin + 1, np.int64)
    widths[usable] = np.round(np.nanmedian(runs[usable], axis=1)).astype(np.int64)
    return [(rows[i], inside[i], int(widths[i])) for i in range(len(rows)) if widths[i] <= thin]


def _choose(mask: np.ndarray, ink: np.ndarray, strength: np.ndarray) -> np.ndarray | None:
    """The digit's pieces as a mask: the piece with the most ink near the centre, with the pieces
    close to it (a pen lifted, a stroke cut by a printed line). If that group is not shaped like a
    digit, the next best piece is tried."""
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return None
    height, width = mask.shape
    short = min(height, width)
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)
    mass[0] = 0
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    off_centre = np.hypot((centroids[:, 0] - width / 2) / width, (centroids[:, 1] - height / 2) / height)
    score = mass * (1 - off_centre)  # off_centre reaches ~0.7 in a corner
    band = round(EDGE_BAND * short) + 1
    at_edge = (left <= band) | (top <= band) | (right >= width - band) | (bottom >= height - band)
    # Lighting leaves faint junk along the frame's edges; a piece there must be strong ink (a tight crop).
    area = np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    strong = np.bincount(labels.ravel(), weights=strength.ravel(), minlength=count) / area >= EDGE_STRENGTH
    score[at_edge & ~strong] = 0
    seed_size = np.maximum(right - left, bottom - top)
    score[seed_size < MIN_SEED * short] = 0  # specks of noise and dirt never start a digit
    for seed in np.argsort(-score)[:SEEDS]:
        if score[seed] <= 0:
            break
        group = np.zeros(count, bool)
        group[seed] = True
        for _ in range(3):  # grow the group by the pieces near it, twice more from the grown group
            x0, y0, x1, y1 = left[group].min(), top[group].min(), right[group].max(), bottom[group].max()
            margin = MERGE_MARGIN * max(x1 - x0, y1 - y0)
            near = (
                (left < x1 + margin)
                & (right > x0 - margin)
                & (top < y1 + margin)
                & (bottom > y0 - margin)
                & (mass >= MIN_PIECE * mass[seed])
            )
            near[0] = False
            if (near & ~group).sum() == 0:
                break
            group |= near
        x0, y0, x1, y1 = left[group].min(), top[group].min(), right[group].max(), bottom[group].max()
        if max(x1 - x0, y1 - y0) < MIN_DIGIT * short:
            continue  # too small for a digit
        if x1 - x0 > MAX_WIDE * (y1 - y0):
            continue  # a bar (what is left of a line, a shadow's edge), not a digit
        chosen: np.ndarray = group[labels].astype(np.uint8)
        if _stroke_share(chosen) > MAX_STROKE:
            continue  # a blob (a smudge, a shadow's corner, a dark object), not strokes
        return chosen
    return None


def _stroke_share(mask: np.ndarray) -> float:
    """Stroke width (2 x area / perimeter) against the shape's longer side."""
    contours, _ = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    rows, cols = np.nonzero(mask)
    extent = max(np.ptp(rows), np.ptp(cols)) + 1
    return 2 * float(mask.sum()) / max(perimeter, 1.0) / extent


def mnist_strokes(mask: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The chosen strokes' ink, stretched so the strokes are solid as in MNIST, and thickened to
    MNIST's width when a pen drew them thinner."""
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    extent = max(bottom - top, right - left)
    pad = extent // 4 + 2
    crop = np.pad(mask[top:bottom, left:right], pad)
    strength = np.pad(ink[top:bottom, left:right], pad)
    # Keep the ink around the chosen pieces (their soft edges), nothing further out.
    keep = cv2.dilate(crop, np.ones((3, 3), np.uint8)) > 0
    solid = float(np.percentile(strength[crop > 0], SOLID_PERCENTILE))
    strokes = np.where(keep, np.clip(strength / max(solid, 1e-6), 0, 1), 0).astype(np.float32)
    share = _stroke_share(crop)
    if share < THIN_STROKE:
        radius = round((MNIST_STROKE - share) * extent / 2)
        if radius >= 1:
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            strokes = np.asarray(cv2.dilate(strokes, disc), np.float32)
    return strokes
