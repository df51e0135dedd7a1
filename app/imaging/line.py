"""A number's ink as one line image, for a line reader (a sequence model read with CTC: app.imaging.ctc):
the ink of the pieces segmentation keeps, its writing brought to LINE_HEIGHT of HEIGHT rows around its
middle, long gaps shortened, left-aligned in WIDTH columns. Training (training.line_reader) makes its images
with this same function, so the reader sees in service what it was trained on."""

from __future__ import annotations

import cv2
import numpy as np

HEIGHT, WIDTH = 32, 320  # the line reader's input (float32 0..1); WIDTH / 4 frames come out
SIGNATURE = "read_line"  # a version's line reader, beside its serving signature (training.export writes it)
LINE_HEIGHT = 18  # rows of a digit's usual height
WRITING = 90  # percentile of the columns' ink heights taken for the writing's height
MIN_WRITING = 0.75  # ... and at least this share of the pieces' median height (a slanted 1's columns are short)
GAP = 0.6  # gaps wider than this many writing heights are shortened to it
SOLID = 0.2  # ink this strong counts as a stroke when measuring
# The reader gives a frame every PHASES columns; a line is read at each phase (shifted -1..PHASES - 2 columns):
# `views`. A text's likelihood is the mean over them (app.imaging.reading): where one phase's frames fall
# badly across a digit, the others' do not. Measured on the dev photos (seeds 11 and 7, 300 per row, v5):
# touching 77.3% -> 80.0% and 73.3% -> 75.3%, separated 95.3% -> 95.0% and 92.7% -> 93.7%; two phases
# (0 and 2 columns) gave 80.3% / 74.3% and 95.3% / 93.3%.
PHASES = 4


def line_image(ink: np.ndarray, line_height: float) -> np.ndarray:
    """(HEIGHT, WIDTH) float32 in 0..1 from `ink` (0 on paper; only the number's pieces) and the pieces'
    median height."""
    ink = np.clip(ink, 0, None).astype(np.float32)
    ink /= max(float(ink.max()), 1e-6)
    solid = ink > SOLID
    has = solid.any(axis=0)
    if has.any():
        tops = solid.argmax(axis=0)[has]
        bottoms = solid.shape[0] - solid[::-1].argmax(axis=0)[has]
        line_height = max(float(np.percentile(bottoms - tops, WRITING)), MIN_WRITING * line_height)
    scale = LINE_HEIGHT / max(line_height, 1.0)
    rows = np.flatnonzero(solid.any(axis=1))
    middle = float(np.median(np.nonzero(solid)[0])) if len(rows) else ink.shape[0] / 2
    ink = ink[:, _kept_columns(np.asarray(ink.any(axis=0)), int(GAP * line_height))]
    top = round(middle - HEIGHT / 2 / scale)
    bottom = round(middle + HEIGHT / 2 / scale)
    pad_top, pad_bottom = max(0, -top), max(0, bottom - ink.shape[0])
    ink = np.pad(ink, ((pad_top, pad_bottom), (0, 0)))[top + pad_top : bottom + pad_top]
    width = min(max(1, round(ink.shape[1] * scale)), WIDTH - 4)  # a line too long is squeezed
    out = np.zeros((HEIGHT, WIDTH), np.float32)
    # Shrunk by area averaging (as every training line is: their writing is 36-110 pixels tall); writing smaller than
    # the line is enlarged bilinearly, not by INTER_AREA's repeated pixels, whose blocks the reader read as extra 1s
    # (a "0397" 9 pixels tall read "17131771"; of 180 numbers 10 pixels tall, 103 -> 160 read right, 12: 152 -> 170)
    grows = HEIGHT > ink.shape[0]
    out[:, 2 : 2 + width] = cv2.resize(
        ink, (width, HEIGHT), interpolation=cv2.INTER_LINEAR if grows else cv2.INTER_AREA
    )
    return out


def views(line: np.ndarray) -> np.ndarray:
    """(PHASES, HEIGHT, WIDTH): `line_image`'s line as it is, then shifted by 1, 2 and -1 columns (no ink is
    lost: `line_image` leaves two blank columns at each end)."""
    out = np.zeros((PHASES, *line.shape), line.dtype)
    for view, shift in enumerate([0, *range(1, PHASES - 1), -1]):
        if shift < 0:
            out[view, :, :shift] = line[:, -shift:]
        else:
            out[view, :, shift:] = line[:, : line.shape[1] - shift]
    return out


def _kept_columns(inked: np.ndarray, longest: int) -> np.ndarray:
    """Columns kept when every run of empty ones is cut to at most `longest`."""
    keep = np.ones(len(inked), bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[1], inked.astype(np.int8), [1]])))
    for start, end in zip(edges[::2], edges[1::2]):  # runs of empty columns: [start, end)
        if end - start > longest:
            keep[start + longest : end] = False
    return keep
