"""Printed lines in a photo of paper (ruled or squared paper, a margin line): found as thin straight lines
present along most of the frame (Hough candidates checked all at once), then erased from a digit's mask
(`remove_lines`, /predict) or their own ink taken out of a number's ink map (`subtract_lines`, POST /read).
The photo path (`app.imaging.photo.paper_ink`) calls them after it has found the ink."""

from __future__ import annotations

import cv2
import numpy as np

LINE_TILT = 35  # degrees: printed lines photographed within this of horizontal or vertical (a phone held at a slant)
# ... and a number's (POST /read, a whole page photographed steeper still), short of 45, where a line would be looked for
# both ways. Not a digit's (/predict: bench/preprocess_accuracy.py's photos, turned up to 15 degrees, lose 5 of 7,500
# at 44: hard ruled and grid paper 2 each, easy ruled 1; none gained)
NUMBER_LINE_TILT = 44
LINE_VOTES = 0.3  # Hough votes of a candidate line, against the frame's shorter side
LINE_STRETCHES = 10  # a candidate's chord across the frame is checked in this many stretches
LINE_SPAN = 0.75  # a printed line shows in at least this share of them (a written 1 in fewer)
LINE_IN_FRAME = 3  # ... of at least this many stretches it is in the frame (at a tilt, a corner cuts a line short)
LINE_REACH = 12  # pixels either side of a line searched for its thickness
MAX_LINES = 300  # candidates checked per direction (a squared page has ~30 lines, each a few peaks)
LINE_MAX_WIDTH = 0.03  # of the frame's shorter side (a number's: longer side): printed lines are thinner
# ... and across a number's frame at least this many pixels: however small the photo, a printed rule is blurred
# over a few pixels (7 in the mask of a 206-pixel photo, over 3% of it: left in, read as an 8, "98" -> "988")
LINE_MIN_PIXELS = 8
MARGIN_LINE_WIDTH = 0.045  # of a number's frame's longer side: lines down it (a margin line) are thinner
LINE_STEPS = 4  # a printed line's ink is measured across it at steps of a quarter pixel from its centre
LINE_BAND = 2  # pixels either side of a printed line's measured width whose own ink is taken out (a number's)
CENTRE_FITS = 3  # a line's centre measured and fitted this many times (`_centred`)
LINE_ALONE = 2.0  # ... the refits through columns with at most this times the line's usual ink (its lower quartile)
CENTRE_DRIFT = 2.0  # pixels: a refit further than this from the first fit anywhere is not taken
LINE_END = 2  # pixels past the frame's edge band within which a line down a number's frame must hold ink at both ends


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


def subtract_lines(
    ink: np.ndarray, mask: np.ndarray, low: np.ndarray, edge_band: int = 0, padded: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The ink map with each printed line's own ink taken out, and the mask there redone against the noise
    threshold `low`: what is left is a pen's ink, where a stroke crosses a line or runs along it. A line (found
    as `remove_lines` finds them, each once, up to LINE_MAX_WIDTH of the frame's longer side thick (at least
    LINE_MIN_PIXELS), a tight photo of a number being wide and low, its lines thick against its height; lines
    down the frame up to MARGIN_LINE_WIDTH, a notebook's margin line being printed thicker than its rules) is
    refitted through the middle of its ink (`_centred`), and its ink across it measured as a profile: the median
    over the whole line at each quarter pixel from its centre (a stroke holds few of a line's pixels). Each band
    pixel keeps the share of the light the line left that its ink absorbs.

    Measured against erasing the lines' pixels from the mask (`remove_lines`, with the crossings given back, and
    a second look with thicker lines for photos read as no digit), on the dev seed 11 of bench/read_accuracy.py's
    photos (400 separated, 300 touching; `lenet5-read` v5): separated 89.8% -> 92.5% (ruled paper 87.0% -> 92.5%,
    plain 92.5% either way), touching 69.0% -> 75.3% (ruled 61.6% -> 73.6%). Erasing took the strokes along a
    line with it (a 7's bar), and thicker lines' erasing most of a digit's ink.

    Lines down the frame up to 4.5% rather than 3% of its longer side (a margin line 7 pixels thick in a
    200-pixel photo was left, and read as a 1: "84" read "184"), on the dev seeds 7 and 11 (300 separated and
    300 touching photos each, `lenet5-read` v6): separated 94.0% -> 94.7% and 95.7% either way, touching 77.3% ->
    77.7% and 79.3% either way. Not across: there the wider limit took touching numbers for printed lines (48 of
    bench/read_accuracy.py's 200 touching scans on seed 0, 19 of its 400 photos; down: none). At least
    LINE_MIN_PIXELS across (photos under 267 pixels wide), on the same dev draws: separated the same (288, 284),
    touching 253 -> 255 and 241 (two two-digit photos read right, none wrong); seed 7's separated scans the
    same.

    `padded`: rows of paper put above and below the frame (`app.imaging.margins.with_paper_margin`: a number cut
    close, or one at a whole frame's edge). Lines down are looked for in the frame's own rows, their ends at its own
    edges, and no thicker than 3% of its height (LINE_MIN_PIXELS at least), as the strokes of a number cut close are
    as tall as the frame. Looked for in the whole frame, no line down held ink along the paper put round it, and a
    squared page's grid was left in the ink, read as 1s. The mask is only ever cleared: the band pixels round a line
    were redone against `low`, and brought back its ink within the frame's edge band, left out of the mask.
    With these and `_centred`'s second fits, in-process: an outside check's whole frames 622 -> 635 of 725 (squared
    paper 37 -> 50 of 70; 16 mended, 3 broken), another's 573 -> 577 of 600 (ruled 94 -> 98, none broken), the two
    before them, 4,733 small crops, 4560 -> 4568 (boxes' lines down; none broken); bench/read_accuracy.py's seed 0,
    photos: separated 946 -> 947 of 1000, touching 838 -> 839; scans: separated 957 either way, touching 858 -> 857."""
    out_ink, out_mask = ink.copy(), mask.copy()
    for flip in (False, True):  # lines across, then down (the arrays transposed: views)
        source, found = (ink.T, mask.T) if flip else (ink, mask)
        target, bar, threshold = (out_ink.T, out_mask.T, low.T) if flip else (out_ink, out_mask, low)
        ends = edge_band
        if flip and padded:  # lines down the frame within the paper put round it: the frame's own rows
            inner = slice(padded, found.shape[1] - padded)
            source, found, target, bar, threshold = (a[:, inner] for a in (source, found, target, bar, threshold))
            ends = 0  # its own edges are its ends, not left out of the mask
        apart = max(LINE_MIN_PIXELS, round(LINE_MAX_WIDTH * max(found.shape)))
        if not flip:
            thin = apart
        elif padded:  # a frame cut close to its number: its strokes are as tall as it
            thin = max(LINE_MIN_PIXELS, round(LINE_MAX_WIDTH * min(found.shape)))
        else:
            thin = max(1, round(MARGIN_LINE_WIDTH * max(found.shape)))
        own = 0 if flip else padded  # lines across: in the frame's own rows (`_line_paths`)
        paths = _line_paths(
            np.ascontiguousarray(found), thin, once=True, apart=apart, padded=own, tilt=NUMBER_LINE_TILT
        )
        for rows, inside, width in paths:
            columns = np.flatnonzero(inside)
            if len(columns) < 2 or (flip and not _end_to_end(found, rows, inside, width, ends, edge_band)):
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
            bar[y, x] &= target[y, x] > threshold[y, x]  # cleared only: the edge band stays clear
    return out_ink, out_mask


def _end_to_end(
    mask: np.ndarray, rows: np.ndarray, inside: np.ndarray, width: int, edge_band: int, side_band: int
) -> bool:
    """Whether a line down a number's frame (`mask` transposed: its columns run down the frame) holds ink within
    LINE_END pixels of the frame's `edge_band` (zeroed in the mask) at both ends, as a printed margin line does (it
    runs off the paper past the frame). A written 1 in a photo cut close around the number, as tall as most of the
    frame, does not reach its edges, and had its ink taken out as a margin line ("846111" read "84611", paper 6 pixels
    above). A line at a tilt that runs off the frame through a side (`inside`: the columns where it is in the frame)
    ends where it meets that side's `side_band` (zeroed too); but one that meets it within the top or bottom edge band
    (beside a corner) ends at the frame's top or bottom: asked for ink within LINE_END of where it met the side, inside
    the band, it was left in whole (a squared page at 25 degrees, a dev generator's whole frames: "82572" read "825")."""
    length = mask.shape[1]
    reach = np.arange(-(width // 2) - 1, width // 2 + 2)
    within = np.flatnonzero(inside & (rows >= side_band) & (rows < mask.shape[0] - side_band))
    if len(within) == 0:
        return False
    first, last = int(within[0]), int(within[-1]) + 1
    # the frame's top and bottom (the line in its edge band there), or where it leaves a side
    top = np.arange(first, min(edge_band + LINE_END if first <= edge_band else first + LINE_END, last))
    bottom = np.arange(
        max(length - edge_band - LINE_END if last >= length - edge_band else last - LINE_END, first), last
    )
    held = []
    for span in (top, bottom):
        across = np.clip(rows[span][:, None] + reach[None, :], 0, mask.shape[0] - 1)
        held.append(bool(mask[across, span[:, None]].any()))
    return all(held)


def _centred(ink: np.ndarray, rows: np.ndarray, columns: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A line's centre (a float row) in each of `columns`, on a straight line through the middle of its ink:
    fitted to the ink's centre across the band around Hough's `rows` (which may cross a thick line aslant), then
    measured again around that fit and fitted again (CENTRE_FITS in all), through the columns where the line holds
    no more ink than LINE_ALONE times its usual (no stroke across it); a refit more than CENTRE_DRIFT pixels from the
    first is not taken. The band's middle pulls its ink's centre towards it, so a line off Hough's row was fitted
    short of it, and a filled loop across the line weighed as many columns of it."""
    first = centre = _fit_centre(ink, rows, columns, offsets, alone_only=False)
    for _ in range(CENTRE_FITS - 1):
        centre = _fit_centre(ink, np.round(centre).astype(np.int64), columns, offsets, alone_only=True)
    drifted = bool(np.abs(centre - first).max() > CENTRE_DRIFT)
    return first if drifted else centre


def _fit_centre(
    ink: np.ndarray, rows: np.ndarray, columns: np.ndarray, offsets: np.ndarray, alone_only: bool
) -> np.ndarray:
    at = np.clip(rows[:, None] + offsets[None, :], 0, ink.shape[0] - 1)
    weights = ink[at, columns[:, None]]
    mass = weights.sum(axis=1)
    measured = rows + (weights @ offsets) / np.maximum(mass, 1e-6)
    weight = np.sqrt(mass) + 1e-6
    inked = mass[mass > 1e-3]
    if alone_only and inked.size:
        weight = np.where(mass <= LINE_ALONE * float(np.percentile(inked, 25)), weight, 1e-6)
    slope, intercept = np.polyfit(columns, measured, 1, w=weight)
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
    mask: np.ndarray, thin: int, once: bool, apart: int | None = None, padded: int = 0, tilt: float = LINE_TILT
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Printed lines within `tilt` degrees of horizontal: each as its row in every column, whether it is in the
    frame there, and its width in pixels.

    Candidates are Hough lines with enough votes, checked all at once: one is a printed line when
    the mask holds it in most stretches of its chord across the frame, and it is no wider than
    `thin` (a shadow's edge is a wide band). `padded`: rows of paper above and below the frame
    (`app.imaging.margins.with_paper_margin`), where no line is drawn: a line is in the frame in its
    own rows only (at a tilt, it runs into that paper, and was held in too few of its stretches).

    Up to LINE_TILT (35 degrees; 20 before) and in as few as LINE_IN_FRAME of the ten stretches (5
    before): a page photographed 20-30 degrees off level (a phone held at a slant) had its lines,
    and those the frame's corners cut short, left in the ink, read as 1s. Measured on photos of
    ruled and squared pages turned with the writing (a dev generator's whole phone frames, blotchy
    light, a slight perspective; 20 per paper and angle): at 20 and 30 degrees ruled 3 and 0 -> 14
    and 10 of 20, squared 0 and 0 -> 13 and 9, with `app.imaging.level`'s angle from the writing's
    own pieces; level and at 10 degrees none read wrong that was right. A number's up to NUMBER_LINE_TILT (44
    degrees; 35 before): at 35-40 (a phone held steeper still; the slight perspective adds a few degrees) every line
    was left in.
    A later generator's fresh frames (`/tmp/s51/gen.py`, 20 per paper and angle) at 40 degrees: ruled 0 -> 7,
    squared 0 -> 4 of 20; level and at 30 degrees the same; those at 35 (on which it was checked) ruled 9 -> 15,
    squared 6 -> 12."""
    height, width = mask.shape
    within = np.radians(tilt)
    votes = round(LINE_VOTES * min(height, width))
    found = cv2.HoughLines(mask, 1, np.pi / 360, votes, min_theta=np.pi / 2 - within, max_theta=np.pi / 2 + within)
    if found is None:
        return []
    rho, theta = found.reshape(-1, 2)[:MAX_LINES].T
    xs = np.arange(width)
    # Each candidate's row in every column: x cos(theta) + y sin(theta) = rho.
    ys = np.round((rho[:, None] - xs * np.cos(theta)[:, None]) / np.sin(theta)[:, None]).astype(np.int64)
    inside = (ys >= padded) & (ys < height - padded)
    rows = np.clip(ys, 0, height - 1)
    near = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # a pixel of tolerance either side
    covered = (near[rows, xs] > 0) & inside
    starts = np.linspace(0, width, LINE_STRETCHES + 1).astype(np.int64)[:-1]
    held = np.add.reduceat(covered, starts, axis=1)
    present = np.add.reduceat(inside, starts, axis=1)
    in_frame = present >= 0.5 * np.diff(np.append(starts, width))  # stretches where the line is in the frame
    shown = ((held >= 0.5 * present) & in_frame).sum(axis=1)
    accept = (shown >= LINE_SPAN * in_frame.sum(axis=1)) & (in_frame.sum(axis=1) >= LINE_IN_FRAME)
    if not accept.any():
        return []
    rows, inside = rows[accept], inside[accept]
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
    # Hough answers a printed line again at slightly other angles (fewer votes; candidates come by votes):
    # with `once`, a copy within `apart` (default: `thin`) of a line already kept, on average, is dropped; and within
    # twice the kept line's width, LINE_MIN_PIXELS at least: a whole phone frame's rules, 3 pixels thick and 28 apart,
    # were within 3% of its side of each other, and every other one was left in the ink.
    apart = thin if apart is None else apart
    kept: list[int] = []
    for index in range(len(rows)):
        if kept and once:
            both = inside[index] & inside[kept]
            distance = (np.abs(rows[index] - rows[kept]) * both).sum(axis=1)
            near = np.minimum(apart, np.maximum(LINE_MIN_PIXELS, 2 * widths[kept]))
            if ((distance < near * both.sum(axis=1)) & (both.sum(axis=1) > 0)).any():
                continue
        kept.append(index)
    return [(rows[i], inside[i], int(widths[i])) for i in kept if widths[i] <= thin]
