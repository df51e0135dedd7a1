"""Cut paths through a cluster of handwritten digits (app.imaging.segment's clusters): top to bottom, each
the staircase that severs the least ink from a point across the cluster's top or bottom. The stretches
between two paths are the candidate digits. Pure numpy."""

from __future__ import annotations

import numpy as np

CUT_ASPECT = 0.5  # clusters of one piece wider than this share of their height are tried with cuts
CUT_STEP = 0.08  # cut paths start (at the top) and end (at the bottom) every this share of the height
CUT_MARGIN = 0.1  # and this far inside the cluster's ends
CUT_REACH = 0.5  # a cut path may run this share of the height either side of where it starts or ends
STRAY = 3.0  # the cost per row of running a height away from there, against a pixel of full ink
SIDESTEP = 0.02  # the cost of a column moved sideways between two rows, besides the ink that move severs
SAME_PATH = 1.0  # paths this close (mean columns apart) are one
MAX_CUTS = 200  # cut paths per cluster, at most (twelve touching digits need about 170)


def cut_paths(ink: np.ndarray, pieces: int, height: int) -> list[np.ndarray]:
    """Cut paths top to bottom (a column per row), left to right: from every CUT_STEP of the height across
    the cluster's top, and to every such step across its bottom, the path that severs the least ink. Paths
    that end up alike (several starts draining into one gap) are kept once."""
    width = ink.shape[1]
    margin = max(1, round(CUT_MARGIN * height))
    if width <= CUT_ASPECT * height and pieces < 2:
        return []
    ends = np.unique(np.round(np.arange(margin, width - margin, max(1.0, CUT_STEP * height))).astype(np.int64))
    if not len(ends):
        return []
    reach = max(1, round(CUT_REACH * height))
    paths = np.concatenate([_least_ink_paths(ink, ends, reach), _least_ink_paths(ink[::-1], ends, reach)[:, ::-1]])
    kept: list[np.ndarray] = []
    for path in paths[np.argsort(np.median(paths, axis=1), kind="stable")]:
        if kept and np.abs(path - kept[-1]).mean() < SAME_PATH:
            continue
        kept.append(path)
    return kept[:: -(-len(kept) // MAX_CUTS)]  # at most MAX_CUTS, spread over the whole cluster


def _least_ink_paths(ink: np.ndarray, starts: np.ndarray, reach: int) -> np.ndarray:
    """For each start column in the top row, the path to the bottom that severs the least ink, within
    `reach` columns of its start: (len(starts), height) columns, the left side of each row's cut.

    A path is a staircase: in each row it passes left of one pixel (severing that pixel's ink), and moving
    sideways between two rows severs the vertical links it passes over (the lesser ink of the two pixels
    each), so it may follow the gap between slanted digits that overlap in columns, and cut where they
    touch. Running away from the start costs a little per row (so paths stay apart and follow ink only
    where it pays) and so does each column moved. All starts at once, in O(height * starts * reach)."""
    height, width = ink.shape
    offsets = np.arange(-reach, reach + 1)
    cols = starts[:, None] + offsets[None, :]  # (n, k): the columns each path may use
    inside = (cols >= 0) & (cols < width)
    cols_in = np.clip(cols, 0, width - 1)
    away = STRAY * np.abs(offsets)[None, :] / height
    # links[r, c]: ink severed by moving sideways past column c between rows r and r + 1, summed from the left
    links = np.minimum(ink[1:], ink[:-1]).astype(np.float64)
    links = np.concatenate([np.zeros((height - 1, 1)), np.cumsum(links, axis=1)], axis=1)
    total = np.where(offsets[None, :] == 0, ink[0][cols_in], np.inf)
    # for each row and column: the column of the row above (indices into offsets: int16 halves the memory of
    # a tall cluster's search, up to height x starts x (2 x reach + 1) entries)
    came = np.zeros((height, *cols.shape), np.int16)
    last = cols.shape[1] - 1
    for row in range(1, height):
        # from column j' above to column j here costs |sever[j] - sever[j']|: the best j' on each side by
        # running minima, left to right (j' <= j) and right to left (j' >= j)
        sever = links[row - 1][cols_in] + SIDESTEP * cols
        from_left, left_at = _running_min(total - sever)
        from_right, right_at = _running_min((total + sever)[:, ::-1])
        from_right, right_at = from_right[:, ::-1], (last - right_at)[:, ::-1]
        left, right = sever + from_left, from_right - sever
        came[row] = np.where(left <= right, left_at, right_at)
        total = np.minimum(left, right) + np.where(inside, ink[row][cols_in], np.inf) + away
    index = np.zeros((len(starts), height), np.int64)
    index[:, -1] = total.argmin(axis=1)
    lines = np.arange(len(starts))
    for row in range(height - 1, 0, -1):
        index[:, row - 1] = came[row, lines, index[:, row]]
    return np.take_along_axis(cols, index, axis=1)


def _running_min(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Along axis 1: the minimum so far, and where it is."""
    lowest = np.minimum.accumulate(values, axis=1)
    where = np.where(values <= lowest, np.arange(values.shape[1])[None, :], 0)
    return lowest, np.maximum.accumulate(where, axis=1)
