"""Marks along a photo frame's edge that are no writing (POST /read's number frames; `photo.paper_ink`): faint strips
the light's falloff leaves there, and a page's edge with the desk beyond it, less writing joined to it
(`left_out_at_edges`)."""

from __future__ import annotations

import cv2
import numpy as np

EDGE_BAND = 0.02  # of the frame's shorter side: its edges are left out (a digit is written inside)
PAGE_EDGE_BAND, PAGE_EDGE_INSIDE, PAGE_EDGE, PAGE_EDGE_WRITING = 0.1, 0.8, 0.3, 3.0  # a page's edge (`_page_edges`)
WRITTEN_ON_EDGE = 3.0  # a page edge's columns this many times its median depth hold writing (`_written_on_edges`) ...
STUB = 5  # ... when together at least 1/STUB as wide as they are deep (else a stretch of the edge down a side)
EDGE_STRENGTH = 3.0  # mean ink of a piece touching the frame's edge, in noise thresholds


def left_out_at_edges(mask: np.ndarray, strength: np.ndarray, closing: int) -> np.ndarray:
    """`mask` without the faint pieces that light falling off toward the frame's edge leaves there, and without a page's
    edge (`_page_edges`) less the writing joined to it (`_written_on_edges`). The paper's closing (`photo.flatten`)
    cannot follow a gradient into the edge: within its reach of the edge (`closing`: the closing's radius and its blur,
    at full scale, beyond the edge band) the paper is taken brighter than it is, and a strip there looks like faint ink.
    A piece touching the edge band, lying within that reach of it, with a mean strength under EDGE_STRENGTH is left out
    (`photo._choose` asks the same of a digit at the edge; written strokes are 4-7 times the noise threshold, these
    strips 1.2-1.3). Without this a tall strip was read as a "1" (bench/read_accuracy.py, seed 0: photos "210" ->
    "1210", "13" -> "113")."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask
    height, width = mask.shape
    band = round(EDGE_BAND * min(height, width)) + 1
    reach = band + closing
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    along_edge = (
        ((left <= band) & (right <= reach))
        | ((top <= band) & (bottom <= reach))
        | ((right >= width - band) & (left >= width - reach))
        | ((bottom >= height - band) & (top >= height - reach))
    )
    faint = piece_means(labels, stats, strength) < EDGE_STRENGTH
    page = _page_edges(labels, stats, band)
    out = (along_edge & faint) | page
    out[0] = False
    kept = _written_on_edges(labels, stats, page & ~(along_edge & faint))
    return np.where(out[labels] & ~kept, 0, mask).astype(np.uint8)


def _page_edges(labels: np.ndarray, stats: np.ndarray, band: int) -> np.ndarray:
    """Which pieces are a page's edge with the desk beyond it (a phone camera's whole frame of a sheet): pieces touching
    the frame's edge `band` whose pixels lie PAGE_EDGE_INSIDE in its outer PAGE_EDGE_BAND, running along PAGE_EDGE of
    a side and PAGE_EDGE_WRITING times as far as the pieces away from the edge are tall (none away from it: none is;
    a number cut to its ink has no such pieces). An outside check's frames with the desk showing had them read as 1s:
    11 of 139 right -> 56, none of its other images worse."""
    height, width = labels.shape
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    wide, tall = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    at_edge = (left <= band) | (top <= band) | (left + wide >= width - band) | (top + tall >= height - band)
    away = ~at_edge
    away[0] = False
    if not away.any():
        return np.zeros(len(stats), bool)
    writing = float(np.median(tall[away]))
    outer = np.ones(labels.shape, bool)
    rim = round(PAGE_EDGE_BAND * min(height, width))
    outer[rim : height - rim, rim : width - rim] = False
    in_rim = np.bincount(labels[outer], minlength=len(stats)) / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    long = (tall >= PAGE_EDGE * height) | (wide >= PAGE_EDGE * width)
    far = np.maximum(tall, wide) >= PAGE_EDGE_WRITING * writing
    page: np.ndarray = at_edge & (in_rim >= PAGE_EDGE_INSIDE) & long & far
    return page


def _written_on_edges(labels: np.ndarray, stats: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The pixels of the page's edges (`_page_edges`' pieces `edges`) that are writing joined to them: where an edge
    running along one side spans WRITTEN_ON_EDGE times as deep as along most of its length, those columns (rows, along
    a side) and half that depth either way, less the edge's own band (its centre fitted along the rest, a pixel
    beyond half its depth either way). An outside check's squared page had the number written 10-40 pixels below the
    page's top, touching what was left of the grid's top line there, and both were taken out as the page's edge:
    "703242" read as no digit. An edge along two sides (a page's corner) is taken out whole, and so is a stretch of it
    down a side (deep columns together fewer than a fifth of their depth: a stub, not writing)."""
    height, width = labels.shape
    kept = np.zeros(labels.shape, bool)
    for piece in np.flatnonzero(edges):
        x, y, wide, tall = (int(v) for v in stats[piece, :4])
        along = (wide >= PAGE_EDGE * width, tall >= PAGE_EDGE * height)
        if along[0] == along[1]:
            continue
        own = labels[y : y + tall, x : x + wide] == piece
        own = own if along[0] else own.T  # the edge along its columns
        filled = own.any(axis=0)
        first, last = own.argmax(axis=0), own.shape[0] - 1 - own[::-1].argmax(axis=0)
        depth = np.where(filled, last - first + 1, 0)
        edge_depth = float(np.median(depth[filled]))
        deep = depth > WRITTEN_ON_EDGE * edge_depth
        edge = filled & ~deep
        if not deep.any() or edge.sum() < 2:
            continue
        columns, rows = np.arange(own.shape[1]), np.arange(own.shape[0])[:, None]
        slope, offset = np.polyfit(columns[edge], (first + last)[edge] / 2, 1)
        near = np.zeros_like(deep)
        for start, stop in _runs(deep, depth):
            deepest = int(depth[start:stop].max())
            if STUB * (stop - start) >= deepest:  # writing, not the edge turning down a side for a stretch (a stub)
                near[max(0, start - deepest // 2) : stop + deepest // 2] = True
        written = own & near[None, :] & (np.abs(rows - (slope * columns + offset)) > edge_depth / 2 + 1)
        kept[y : y + tall, x : x + wide] |= written if along[0] else written.T
    return kept


def _runs(deep: np.ndarray, depth: np.ndarray) -> list[tuple[int, int]]:
    """The runs (start, stop) of `deep` columns, those less than half the deeper one's `depth` apart taken as one (the
    columns of one digit, or of a number's joined digits)."""
    steps = np.flatnonzero(np.diff(np.concatenate([[False], deep, [False]]).astype(np.int8)))
    runs: list[tuple[int, int]] = []
    for start, stop in zip(steps[::2].tolist(), steps[1::2].tolist()):
        if runs:
            previous = runs[-1]
            deeper = max(int(depth[previous[0] : previous[1]].max()), int(depth[start:stop].max()))
            if start - previous[1] < deeper // 2:
                runs[-1] = (previous[0], stop)
                continue
        runs.append((start, stop))
    return runs


def piece_means(labels: np.ndarray, stats: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of `values` over each connected piece (cv2.connectedComponentsWithStats' labels and stats)."""
    area = np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    means: np.ndarray = np.bincount(labels.ravel(), weights=values.ravel(), minlength=len(stats)) / area
    return means
