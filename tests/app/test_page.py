"""A sheet photographed on a desk (app.imaging.page): the page found in a work frame, and frames with no such page (paper
filling the frame, lit unevenly or with a shadow across it; a board with chalk on it) left whole."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.imaging.page import page_inside
from tests.app.number_helpers import shadow_across


def _desk_and_sheet(seed: int, desk: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """A 768x1024 work frame of a sheet turned up to 8 degrees on a desk (`desk`: its level; the sheet's is 0.68-0.81),
    and where the sheet is."""
    rng = np.random.default_rng(seed)
    h, w = 768, 1024
    sheet = np.zeros((h, w), np.uint8)
    size = (int(w * rng.uniform(0.45, 0.75)), int(h * rng.uniform(0.45, 0.75)))
    corners = cv2.boxPoints(((w / 2 + rng.uniform(-60, 60), h / 2), size, float(rng.uniform(-8, 8))))
    cv2.fillPoly(sheet, [corners.astype(np.int32)], 1)
    light = 0.75 + 0.15 * np.arange(w, dtype=np.float32)[None, :] / w
    frame = np.where(sheet > 0, 0.9 * light, desk + 0.03 * rng.normal(0, 1, (h, w))).astype(np.float32)
    return np.clip(cv2.GaussianBlur(frame, (0, 0), 1.0), 0, 1), sheet


@pytest.mark.parametrize("desk", [0.15, 0.5])
@pytest.mark.parametrize("seed", range(6))
def test_the_page_of_a_sheet_on_a_desk_is_found(seed, desk):
    # a dark desk, and a light one: a page 0.68-0.81 bright on a desk of 0.5 (an outside check's beige desks round a
    # sheet filling most of the frame were taken for paper, and the page's edge read as a 1: "29" read "291")
    frame, sheet = _desk_and_sheet(seed, desk)
    found = page_inside(frame)
    assert found is not None
    x, y, width, height = found
    assert sheet[y : y + height, x : x + width].all()  # all of it on the page ...
    # ... and most of the page: an upright rectangle within a sheet turned 8 degrees holds about two thirds of it
    assert width * height >= 0.6 * sheet.sum()


@pytest.mark.parametrize("seed", range(6))
def test_the_page_of_a_notebook_sheet_is_found_whole_across_its_margin_line(seed):
    # An outside check's notebook sheet on a desk, a number written right of its margin line (two red lines down the
    # sheet, its rules blue): the lines parted the page at the threshold, the largest part, left of the margin, was
    # taken for the page, and the number beside it was not read ("70" read as no ink).
    frame, sheet = _desk_and_sheet(seed)
    rows, cols = np.nonzero(sheet)
    for row in range(int(rows.min()) + 30, int(rows.max()), 64):  # the rules, across the sheet
        frame[row : row + 3] = np.where(sheet[row : row + 3] > 0, 0.5, frame[row : row + 3])
    margin = int(cols.min() + 0.7 * (cols.max() - cols.min()))
    for col in (margin, margin + 10):  # the margin line, down it
        frame[:, col : col + 4] = np.where(sheet[:, col : col + 4] > 0, 0.3, frame[:, col : col + 4])
    found = page_inside(frame)
    assert found is not None
    x, y, width, height = found
    assert sheet[y : y + height, x : x + width].all()
    assert width * height >= 0.6 * sheet.sum()


def _paper(shadow: float, soft: float) -> np.ndarray:
    """Paper filling a 768x1024 frame, lit unevenly (a gradient and vignetting), with a shadow across its left part
    taking `shadow` of the light, its edge softened over `soft` of the frame."""
    rows, cols = np.mgrid[0:768, 0:1024].astype(np.float32)
    y, x = rows / 768 - 0.5, cols / 1024 - 0.5
    light = (1 - 0.3 * (0.5 + x)) * (1 - 0.3 * (x**2 + y**2) * 2)
    light *= 1 - shadow * (1 - np.clip((x + 0.1) / soft + 0.5, 0, 1))
    return (0.85 * light).astype(np.float32)


@pytest.mark.parametrize(("shadow", "soft"), [(0.0, 0.1), (0.3, 0.03), (0.55, 0.03), (0.55, 0.12), (0.7, 0.03)])
def test_paper_filling_the_frame_has_no_page_to_find(shadow, soft):
    # bench/renderings.py's photos: a shadow takes up to 55% of the light, softened over 3-12% of the frame
    assert page_inside(_paper(shadow, soft)) is None


@pytest.mark.parametrize(("size", "gap"), [((282, 512), 60), ((282, 512), 80), ((600, 800), 80), ((768, 1024), 120)])
def test_ruled_paper_filling_the_frame_has_no_page_between_its_rules(size, gap):
    # bench/read_accuracy.py's photos of ruled paper: the paper between two rules, sharp lines along it and the frame's
    # edges at its ends, was taken for a page (a strip with no number in it: "0516" read as no digit). A printed line is
    # dark only a few pixels across; a page's edge steps down to the desk and stays there.
    h, w = size
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.8 - 0.25 * cols / w
    paper = np.where(np.mod(rows, gap) < 3, 0.35 * light, light)
    assert page_inside(cv2.GaussianBlur(paper.astype(np.float32), (0, 0), 1.0)) is None


def test_chalk_on_a_board_has_no_page_to_find():
    board = np.full((768, 1024), 50, np.uint8)
    cv2.putText(board, "4021", (200, 500), cv2.FONT_HERSHEY_SIMPLEX, 8, 230, 20)
    assert page_inside(board.astype(np.float32) / 255) is None


@pytest.mark.parametrize("seed", range(6))
def test_a_sheet_on_a_desk_with_a_shadow_across_it_is_found(seed):
    # An outside check's frames: a shadow across the sheet took its shaded part below Otsu's threshold (the page was
    # its lit part, then not convex), and the page's edge in the shade steps less than the lit page stands above the
    # desk. The page is found at a second threshold, and its edge is sharp against the light a little further either
    # side of it.
    frame, sheet = _desk_and_sheet(seed)
    shaded = (frame * shadow_across(frame.shape, np.random.default_rng(seed + 100), 0.55)).astype(np.float32)
    found = page_inside(shaded)
    assert found is not None
    x, y, width, height = found
    assert sheet[y : y + height, x : x + width].all()
    assert width * height >= 0.6 * sheet.sum()


@pytest.mark.parametrize("seed", range(8))
def test_a_sheet_on_a_lighter_desk_with_a_shadow_across_both_is_found(seed):
    # Outside checks' sheets on grey desks, a shadow or a lamp's light across desk and sheet alike: the shaded page is
    # darker than the lit desk, so no one level parts them ("53795" was refused for too many digits, "6274070" read as
    # 74 digits; 18 of the checks' 1,325 frames have a page only their edges find). A desk of 0.4 under a shadow taking
    # 55% of the light: none of these 8 found before.
    frame, sheet = _desk_and_sheet(seed, desk=0.4)
    shaded = (frame * shadow_across(frame.shape, np.random.default_rng(seed + 100), 0.55)).astype(np.float32)
    found = page_inside(shaded)
    assert found is not None
    x, y, width, height = found
    assert sheet[y : y + height, x : x + width].all()
    assert width * height >= 0.6 * sheet.sum()


def test_a_printed_line_nearly_across_the_sheet_leaves_the_page_whole():
    # An outside check's notebook sheet: its margin line, as dark as the desk at the page's threshold down its top half,
    # cut a slit into the page, and the rectangle read was the page below the slit (the number was above it).
    frame, sheet = _desk_and_sheet(0)
    cols = np.flatnonzero(sheet.any(axis=0))
    x = int(cols[0] + 0.3 * (cols[-1] - cols[0]))
    rows = np.flatnonzero(sheet[:, x])
    frame[: rows[0] + int(0.6 * (rows[-1] - rows[0])), x - 1 : x + 2] = 0.15
    found = page_inside(frame)
    assert found is not None
    x, y, width, height = found
    assert sheet[y : y + height, x : x + width].all()
    assert width * height >= 0.6 * sheet.sum()
