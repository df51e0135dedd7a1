"""Cut paths (app.imaging.cuts): the fast search (running minima over each row's sideways moves) checked
against the plain dynamic programme over every pair of columns, and what a path costs, written out."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging import cuts


def step_cost(ink: np.ndarray, row: int, before: int, column: int, start: int) -> float:
    """What moving from `before` in the row above to `column` in `row` costs, as documented: the pixel's ink,
    the vertical links severed on the way sideways (the lesser ink of the two pixels each), SIDESTEP per
    column moved, and STRAY for the distance from the start (in heights)."""
    a, b = sorted((before, column))
    links = float(np.minimum(ink[row - 1, a:b], ink[row, a:b]).sum())
    distance = abs(column - start) / ink.shape[0]
    return float(ink[row, column]) + links + cuts.SIDESTEP * (b - a) + cuts.STRAY * distance


def cost_of(ink: np.ndarray, path: np.ndarray, start: int) -> float:
    """A path's cost: the ink of its first pixel, then each row's step."""
    steps = (step_cost(ink, row, int(path[row - 1]), int(path[row]), start) for row in range(1, ink.shape[0]))
    return float(ink[0, path[0]]) + sum(steps)


def cheapest(ink: np.ndarray, start: int, reach: int) -> float:
    """The least cost of any path from `start` in the top row, by trying every column pair per row."""
    height, width = ink.shape
    columns = [c for c in range(start - reach, start + reach + 1) if 0 <= c < width]
    best = {c: (float(ink[0, c]) if c == start else np.inf) for c in columns}
    for row in range(1, height):
        best = {c: min(best[b] + step_cost(ink, row, b, c, start) for b in columns) for c in columns}
    return min(best.values())


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_search_finds_the_cheapest_path(seed):
    rng = np.random.default_rng(seed)
    ink = (rng.uniform(size=(9, 16)) * (rng.uniform(size=(9, 16)) < 0.45)).astype(np.float32)
    starts, reach = np.array([2, 7, 13]), 4
    paths = cuts._least_ink_paths(ink, starts, reach)
    for start, path in zip(starts, paths):
        assert path[0] == start and np.abs(path - start).max() <= reach
        assert cost_of(ink, path, start) == pytest.approx(cheapest(ink, start, reach), abs=1e-6)


def test_a_path_follows_the_gap_between_slanted_strokes_when_crossing_one_costs_more():
    ink = np.zeros((40, 60), np.float32)
    for row in range(40):  # two strokes leaning right, 12 pixels wide, with a gap of 4 between them
        for left in (14 - row // 4, 30 - row // 4):
            ink[row, left : left + 12] = 1.0
    (path,) = cuts._least_ink_paths(ink, np.array([27]), 20)  # from the gap at the top (columns 26-29)
    assert all(ink[row, path[row]] == 0 for row in range(40)), path  # it never crosses a stroke
    assert 17 <= path[-1] <= 20, path  # and ends in the gap at the bottom, 7-10 columns left of its start
