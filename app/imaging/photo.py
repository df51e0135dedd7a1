"""The digit in a phone photo of paper: uneven light and shadows flattened, ink separated from paper
by its contrast with the paper around it, ruled and squared lines removed (`app.imaging.lines`; for a number, their own
ink taken out), the digit chosen among what is left, and its strokes brought to MNIST's
width. OpenCV does the image work (morphology, Hough lines, connected components): each step is one C++
call on a frame of at most 320 pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.imaging.edge_marks import EDGE_BAND, EDGE_STRENGTH, left_out_at_edges, piece_means
from app.imaging.lines import remove_lines, subtract_lines
from app.imaging.margins import CLEAN_PAPER, DIGIT_MARGIN, FLAT_PAPER, cut_to_its_ink, on_paper

WORK_SIDE = 320  # the photo path's frame: a digit of 25% of it is still 80 pixels tall
BACKGROUND_SHARE = 1 / 6  # closing kernel (at quarter scale) against the frame: wider than any stroke
MIN_INK = 0.06  # ink must take at least this share of the paper's light
NOISE_SIGMAS = 4.0  # ink map noise up to this many standard deviations is paper
POLARITY_TIE = 1.05  # dark and light features' strengths this close are a tie (`_dark_ink`),
THINNER = 1.5  # won by the polarity whose features are this many times thinner (else by the stronger)
# ... unless the strongest few pixels (FEW: the top 0.02%, a small number on a whole sheet) of one polarity are CLEARLY
# that many times stronger than the other's: a number's strokes may be under the 0.5% that the 99.5th percentile needs
CLEAR, FEW = 1.5, 99.98
# ... and when they disagree with the 99.5th percentile, its features THICKER times thicker (`_dark_ink`)
THICKER = 3.0
SPECKS = 0.002  # share of the frame: less ink than this, in pieces too small for a digit, is dirt
MIN_SEED = 0.04  # a digit's largest piece is at least this share of the frame's shorter side
MIN_DIGIT = 0.08  # a digit is at least this share of the frame's shorter side tall (or wide)
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
# A number cropped tight to its ink (a crop tool's or a client's): the paper's closing, the edge band and the printed
# lines' votes all take the frame's shorter side for a margin of paper around the writing. When this share of the
# ink found lies in pieces at the top or bottom edge band, the frame is given a margin of paper (`with_paper_margin`)
# of `margins.TIGHT_MARGIN` of its height above and below and read again. None of bench/read_accuracy.py's 6,000 renderings of
# seed 0 is taken so; its dev scans (seed 5, 40 cut to their ink and 2 pixels) read 37 right rather than 31.
TIGHT_INK = 0.02


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
    frame = work_frame(gray)
    level = cut_to_its_ink(frame)
    level = cut_to_its_ink(frame, CLEAN_PAPER, FLAT_PAPER) if level is None else level  # a bold digit on digital paper
    if level is not None:  # paper put back around it on every side
        frame = work_frame(on_paper(frame, max(1, round(DIGIT_MARGIN * min(frame.shape))), level))
    found = paper_ink(frame)
    if found.reason is not None:
        return PhotoDigit(None, found.reason)
    chosen = _choose(found.mask, found.ink, found.strength)
    if chosen is None:  # paper with a few specks of dirt or noise has no ink to speak of
        return PhotoDigit(None, "no_ink" if found.mask.mean() < SPECKS else "no_digit")
    # Bridge the gaps that removing printed lines cut into strokes that crossed them.
    gap = max(3, round(GAP_SHARE * min(chosen.shape)) | 1)
    chosen = cv2.morphologyEx(chosen, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap)))
    return PhotoDigit(mnist_strokes(chosen, found.ink))


def paper_ink(gray: np.ndarray, number: bool = False, padded: int = 0) -> PaperInk:
    """The ink in a work frame (`work_frame`) of a photo or scan of paper: lighting flattened, the ink's
    polarity chosen, camera noise thresholded by the local paper level, the frame's edge and printed
    lines dropped. `number`: a number written across the frame (POST /read): the paper's closing is a share
    of the frame's shorter side (of the longer one, it would span whole digits and their loops), and the
    printed lines' own ink is taken out of the ink map (`subtract_lines`) rather than their pixels out of the
    mask. /predict keeps the single-digit behaviour, whose accuracy tables were measured with it. `padded`: rows
    of paper put above and below the frame (`subtract_lines`)."""
    extent = min(gray.shape) if number else None
    # Dark ink on paper, or chalk on a board: whichever way has the stronger strokes once the lighting is
    # flattened (before, a shadow can hold more of the frame's darkest pixels than ink), or on a tie the
    # thinner (`_dark_ink`). Compared in absolute terms: on dark paper, a share of its little light is noise.
    dark, dark_paper = flatten(gray, extent)
    light, light_paper = flatten(1 - gray, extent)
    dark_ink = _dark_ink(dark * dark_paper, light * light_paper, number)
    ink, paper = (dark, dark_paper) if dark_ink else (light, light_paper)
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
        smooth, mask = subtract_lines(smooth, mask, low, edge_band=band, padded=padded)
    else:
        mask = remove_lines(mask)
    strength = smooth / low
    if number:
        mask = left_out_at_edges(mask, strength, 2 * _closing_side(min(gray.shape) // 4))
    return PaperInk(mask, smooth, strength, None if mask.any() else "no_ink")


def cropped_tight(mask: np.ndarray) -> bool:
    """Whether the ink reaches the frame's top or bottom edge band: TIGHT_INK of it or more, in pieces other
    than lines down the whole frame (a margin line: as tall as the frame, and narrow for it)."""
    height, width = mask.shape
    band = round(EDGE_BAND * min(height, width)) + 2
    stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[2]
    top, tall, wide = stats[1:, cv2.CC_STAT_TOP], stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    margin_line = (tall >= 0.9 * height) & (wide <= 0.1 * height)
    at_edge = ((top <= band) | (top + tall >= height - band)) & ~margin_line
    return bool(stats[1:, cv2.CC_STAT_AREA][at_edge].sum() >= TIGHT_INK * max(int(mask.sum()), 1))


def _dark_ink(dark: np.ndarray, light: np.ndarray, number: bool = False) -> bool:
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
    negative is.

    First, when the strongest few pixels (FEW) of one polarity are CLEAR times as strong as the other's, that one: a
    phone camera's whole frame of a sheet with a small number on it (an outside check: 2000-4032 px, the number
    5-40% of the frame's width) holds fewer strokes than the 99.5th percentile needs, and the paper's light blots
    won (192 of its 725 frames and crops decided wrong -> 6). No decision on the benches' images changes (seed 0:
    bench/read_accuracy.py's 1,800 numbers, 300 per row, and 300 of each bench/renderings.py digit rendering).

    Then, for a number (`number`, POST /read), when the few strongest pixels favour one polarity and the 99.5th
    percentile the other, and the latter's strong features are THICKER times thicker: the former. A whole frame of
    squared or ruled paper with a small number on it: the pen's strokes are the darkest few pixels, and the paper's
    cells between the printed lines, wide, stand out the light way more than the thin lines do the dark way; the
    paper was read as the ink (an outside check's 725 images, each at the work size, from its page: 15 decided wrong;
    with THICKER 3, 10 changed, all to the right polarity: 5 wrong; at 2, 13: 2 wrong, but a bold soft 8 cut close,
    read again with paper round it, was taken for its hole's rims, its dark features 2.5 times thicker)."""
    (dark_strength, dark_few), (light_strength, light_few) = (np.percentile(f, [99.5, FEW]) for f in (dark, light))
    if max(dark_few, light_few) >= CLEAR * min(dark_few, light_few):
        return bool(dark_few >= light_few)
    strength = (float(dark_strength), float(light_strength))
    few_dark = bool(dark_few > light_few)
    disagree = number and few_dark != (strength[0] > strength[1])  # the strongest few pixels and the 99.5th
    tie = max(strength) <= POLARITY_TIE * min(strength)
    thickness = (_thickness(dark, strength[0]), _thickness(light, strength[1])) if disagree or tie else (0.0, 0.0)
    if disagree:
        few, many = thickness if few_dark else thickness[::-1]
        if few > 0 and many >= THICKER * few:
            return few_dark
    if tie and min(thickness) > 0 and max(thickness) >= THINNER * min(thickness):
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
    side = _closing_side(max(small.shape) if extent is None else extent // 4)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.GaussianBlur(paper, (0, 0), side / 4)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    ink: np.ndarray = np.clip(1 - gray / np.maximum(paper, 1e-3), 0, 1)
    return ink, paper


def _closing_side(extent: int) -> int:
    """The paper's closing kernel (`flatten`), in quarter-scale pixels, for a quarter-scale `extent`."""
    return max(3, round(extent * BACKGROUND_SHARE) | 1)


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
    strong = piece_means(labels, stats, strength) >= EDGE_STRENGTH
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
