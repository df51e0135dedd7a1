"""Paper put back around an image cut to its ink (a crop tool's "crop to content", a client's crop): the photo path's
steps (`app.imaging.photo`) take a frame's edges for paper around the writing. A number cut tight above and below gets
rows of paper there, each edge's paper carried outward (`with_paper_margin`, `/read`); a digit or number on even paper
(a digital image, a scan) close round its ink gets paper on every side (`cut_to_its_ink`, `on_paper`; `/predict` and
`/read`)."""

from __future__ import annotations

import numpy as np

TIGHT_MARGIN = 0.6  # of a number frame's height, above and below it (`photo.cropped_tight`)
# A single digit on even paper whose ink comes within NEAR_EDGE of its frame's shorter side of an edge (cut out to its
# ink, or nearly: `cut_to_its_ink`) is given DIGIT_MARGIN of that side of paper on every side (`on_paper`; at 0.6, a
# number's margin, three thin 1s at a scan's edge of 1000 read as 0s). Paper is even within EVEN_PAPER of full scale:
# 0.004 or less in 90% of MNIST test digits cut to their ink (PNG, JPEG, WebP) and in bench/renderings.py's clean
# scans, 0.012 or more in every phone photo there. Not when a line runs along an edge (`framed`, a box drawn around
# the digit): at most MAX_LINE of the shorter side thick, along FRAMED of the edge, with ink along at most THIN of it
# in the LINE_BAND beyond.
NEAR_EDGE = 0.08
DIGIT_MARGIN = 0.3
EVEN_PAPER = 0.01
# The least share of the outer tenth that is paper: half on the photo path (a digit cut to its ink reaches each edge
# only in places: of MNIST's first 1,000 test digits cut so, none holds half that strip); a quarter on the clean path
# (images under 64 pixels and digital ones, never photos), where a bold 0 cut into its strokes fills most of it.
PHOTO_PAPER = 0.5
CLEAN_PAPER = 0.25
# On the photo path, a digit whose paper fills under half that strip (a bold digit cut into its strokes: an outside
# check's large digital digits cut so, bold 0s read as 6s and 3s) is given paper too when a quarter of it is paper
# within FLAT_PAPER, one grey level: a digital image's paper, not a photo's (at EVEN_PAPER a photo's shadow passed).
FLAT_PAPER = 0.004
MAX_LINE = 0.1
FRAMED = 0.8
THIN = 0.5
LINE_BAND = 0.04
# A line along an edge painted over (`without_the_box`) runs along it from end to end: boxes and underlines in the
# outside checks' images are inked along all of it in one row, a digit's stroke along a tight crop's edge is not.
EDGE_TO_EDGE = 0.98
# Nor when another edge has part of a line along it (`_partly_framed`: a run of ink along PARTIAL of it in its outer
# three rows, a side with a gap, a comb field's ticks): that part was left and read as a 1.
PARTIAL = 0.25


def with_paper_margin(gray: np.ndarray, margin: int) -> np.ndarray:
    """`gray` with `margin` rows of paper above and below it: each edge's paper (the median of its outer rows,
    then a running median along the edge wider than the strokes crossing it) carried outward, with the frame's
    own noise (measured along those rows), so that the noise threshold (`paper_ink`) stays what it is. Only
    above and below: printed lines across the frame still reach both its sides (`app.imaging.lines`)."""
    height, width = gray.shape
    window = max(5, min(height, width) // 2) | 1
    strip = max(3, height // 10)
    top = _running_median(np.median(gray[:strip], axis=0), window)
    bottom = _running_median(np.median(gray[-strip:], axis=0), window)
    out = np.concatenate([np.repeat(top[None], margin, 0), gray, np.repeat(bottom[None], margin, 0)]).astype(np.float32)
    edges = np.concatenate([gray[:3].ravel(), gray[-3:].ravel()])
    steps = np.diff(edges)
    noise = 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2)
    rng = np.random.default_rng(0)  # the same upload reads the same way every time
    out[:margin] += rng.normal(0, noise, (margin, width)).astype(np.float32)
    out[-margin:] += rng.normal(0, noise, (margin, width)).astype(np.float32)
    return np.clip(out, 0, 1)  # gray is 0..1 (decode.channels)


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.pad(values.astype(np.float32), half, mode="edge")
    result: np.ndarray = np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)
    return result


def cut_to_its_ink(frame: np.ndarray, paper_share: float = PHOTO_PAPER, even: float = EVEN_PAPER) -> float | None:
    """The level of the paper around a single digit (or number) on even paper (a digital image's or a scan's:
    `_even_paper`) that fills its frame, cut out to its ink or nearly: its ink (`_inked`) comes within NEAR_EDGE of
    the frame's shorter side of one of its edges; None when not. The photo path takes the frame's edges for paper
    around the digit. Photos are left as they are: their paper is not even, and a margin of one shade beside their
    light's falloff was read as ink. So is a digit with a line along an edge (`framed`: a form's cell cut out with its
    box): given paper around it, the box was read as a 0. `paper_share`: the least share of the outer tenth that is
    paper (CLEAN_PAPER for the clean path's images, never photos), within `even` (EVEN_PAPER, or FLAT_PAPER)."""
    paper = _even_paper(frame, paper_share, even)
    if paper is None:
        return None
    inked = _inked(frame, paper)
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if not rows.size or framed(frame):
        return None
    height, width = frame.shape
    margin = min(rows[0], height - 1 - rows[-1], cols[0], width - 1 - cols[-1])
    return paper if margin <= NEAR_EDGE * min(height, width) else None


def clean_paper_put_back(gray: np.ndarray, share: float) -> tuple[np.ndarray, int]:
    """An image on the clean path (under 64 pixels, or digital) with `share` of its shorter side of its paper put back
    on every side when it is cut to its ink (`cut_to_its_ink` with CLEAN_PAPER), and that margin (0: as it was)."""
    level = cut_to_its_ink(gray, CLEAN_PAPER)
    if level is None:
        return gray, 0
    margin = max(1, round(share * min(gray.shape)))
    return on_paper(gray, margin, level), margin


def framed(gray: np.ndarray) -> bool:
    """Whether a line runs along one of the frame's edges (`_lines_along`: a box drawn around the digit, a form's cell,
    or part of one)."""
    return any(end is not None for end in _lines_along(_inked(gray, float(np.median(gray)))))


def without_the_box(gray: np.ndarray) -> np.ndarray | None:
    """`gray` with the lines that run along its edges from end to end (`_lines_along`, one row of them inked along
    EDGE_TO_EDGE of the edge: a box drawn around a digit, a form's cell, an underline), and a pixel beyond each (their
    soft edge, a codec's ringing), painted over with the paper inside them (the frame's median): in the image's own
    pixels. Not a digit's own stroke along the edge of a crop (a 7's bar, inked along 0.94 of it in an outside check's
    tight crop). None when there are none, or when they would leave no room for a digit. A digit close inside the box is
    then given paper around it (`cut_to_its_ink`), as one cut to its ink: of the outside check's 60 boxed digits
    where that rule was left out, 5 more were misread."""
    inked = _inked(gray, paper := float(np.median(gray)))
    ends = _lines_along(inked, EDGE_TO_EDGE)
    if all(end is None for end in ends) or _partly_framed(inked, ends):
        return None
    top, bottom, left, right = (0 if end is None else end + 1 for end in ends)
    height, width = gray.shape
    if top + bottom >= height // 2 or left + right >= width // 2:
        return None
    out = np.full_like(gray, paper)
    out[top : height - bottom, left : width - right] = gray[top : height - bottom, left : width - right]
    return out


def _partly_framed(inked: np.ndarray, ends: list[int | None]) -> bool:
    """Whether an edge without a line from end to end has part of one along it: a run of ink along PARTIAL of it or
    more in its outer three rows (a box's side with a gap in it, a comb field's ticks). Painting the other lines over
    left that part to be read as a 1 (an outside check: "12" read "121", a comb's "50" read "1501")."""
    for end, side in zip(ends, (inked, inked[::-1], inked.T, inked.T[::-1])):
        if end is None and max(_longest_run(row) for row in side[:3]) >= PARTIAL * side.shape[1]:
            return True
    return False


def _longest_run(row: np.ndarray) -> int:
    """The longest run of True in a row."""
    padded = np.concatenate([[False], row, [False]]).astype(np.int8)
    steps = np.flatnonzero(np.diff(padded))
    return int((steps[1::2] - steps[::2]).max(initial=0))


def _lines_along(inked: np.ndarray, length: float = 0.0) -> list[int | None]:
    """For each edge (top, bottom, left, right), how far in a line along it reaches, or None: from within two pixels of
    the edge, rows of ink along FRAMED of its length or more (one of them along `length` of it or more), at most
    MAX_LINE of the frame's shorter side thick, with ink along at most THIN of it in the LINE_BAND beyond them. A box's
    lines may fill the outer tenth: `inked` is measured against the frame's median, mostly the paper inside the box."""
    band = max(2, round(LINE_BAND * min(inked.shape)))
    widest = max(band, round(MAX_LINE * min(inked.shape)))
    ends = []
    for side in (inked, inked[::-1], inked.T, inked.T[::-1]):
        end = _line_along(side, widest, band)
        ends.append(end if end is not None and float(side[:end].mean(axis=1).max()) >= length else None)
    return ends


def _line_along(side: np.ndarray, widest: int, band: int) -> int | None:
    """How far in from the edge a line along the first rows of `side` reaches (see `_lines_along`), or None."""
    along = side[: widest + 3].mean(axis=1) >= FRAMED
    if not along[:3].any():
        return None
    start = int(np.argmax(along[:3]))
    thick = int(np.argmin(along[start:])) if not along[start:].all() else len(along) - start
    beyond = side[start + thick : start + thick + band]
    return start + thick if thick <= widest and beyond.size and float(beyond.any(axis=0).mean()) <= THIN else None


def _inked(gray: np.ndarray, paper: float) -> np.ndarray:
    """On even paper, ink is what differs from the paper's level by at least half the frame's strongest contrast
    with it."""
    contrast = np.abs(gray - paper)
    inked: np.ndarray = contrast > 0.5 * float(contrast.max())
    return inked


def _even_paper(gray: np.ndarray, paper_share: float, even: float = EVEN_PAPER) -> float | None:
    """The level of the paper in the frame's outer tenth if it is of one shade, else None. The paper is at least
    `paper_share` of that strip (a digit cut to its ink reaches each edge in places); on the paper's side (the darker
    or lighter, whichever is narrower), from a tenth to six tenths of that share into it, the pixels lie within
    `even`; its level is the percentile `paper_share` from that side (at PHOTO_PAPER, the median)."""
    outer = _outer_tenth(gray)
    share = 100 * paper_share
    dark_low, dark_high, light_low, light_high = np.percentile(
        outer, [0.4 * share, 0.9 * share, 100 - 0.9 * share, 100 - 0.4 * share]
    )
    light, dark = light_high - light_low, dark_high - dark_low
    if min(light, dark) >= even:
        return None
    return float(np.percentile(outer, 100 - share if light <= dark else share))


def on_paper(gray: np.ndarray, margin: int, level: float) -> np.ndarray:
    """`gray` with `margin` pixels of its paper (at `level`: `cut_to_its_ink`) on every side. The margin carries the
    frame's own noise (`_noise`), so that the noise threshold (`paper_ink`) stays what it is."""
    height, width = gray.shape
    rng = np.random.default_rng(0)  # the same upload reads the same way every time
    out = rng.normal(level, _noise(gray), (height + 2 * margin, width + 2 * margin)).astype(np.float32)
    out[margin : margin + height, margin : margin + width] = gray
    return np.clip(out, 0, 1)  # gray is 0..1 (decode.channels)


def _noise(gray: np.ndarray) -> float:
    """The frame's pixel noise, measured from pixel to pixel along its outer rows and columns."""
    outer = np.concatenate([gray[:3].ravel(), gray[-3:].ravel(), gray[:, :3].T.ravel(), gray[:, -3:].T.ravel()])
    steps = np.diff(outer)
    return float(1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2))


def _outer_tenth(gray: np.ndarray) -> np.ndarray:
    """The pixels within a tenth of the frame's shorter side (at least 2) of its edges."""
    strip = max(2, min(gray.shape) // 10)
    edges = np.ones(gray.shape, bool)
    edges[strip:-strip, strip:-strip] = False
    return gray[edges]
