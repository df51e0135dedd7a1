"""Training images for reading numbers: numbers written with MNIST training digits (touching or a little
apart, slanted, with MNIST's brush or re-drawn by a pen of another width; a canvas drawing, a scan or a photo
of paper) and cut by `POST /read`'s own segmentation (`app.imaging.segment`). A candidate that holds one
whole digit (perhaps with a sliver of its neighbour) keeps that digit's label; one that holds part of a digit,
or much of two, is labelled NOT_A_DIGIT, which the loss trains toward every class equally likely (outlier
exposure, Hendrycks et al. 2019). A model trained so is unsure of what is not one digit, and the reader can
trust its probabilities to choose among cuts. The candidates are exactly what the reader would send the model.

bench/read_accuracy.py writes its numbers another way on purpose (its own sizes, pens, tilt, wave and photo
effects, and MNIST's test digits): what it measures is not what the model was trained on."""

from __future__ import annotations

import io
import multiprocessing

import cv2
import numpy as np
from PIL import Image

from app.imaging.segment import Candidate, segment_number
from training.pens import redrawn

NOT_A_DIGIT = -1  # the label of a wrong cut
AMBIGUOUS = -2  # a candidate neither clearly right nor clearly wrong: left out of training
WHOLE = 0.9  # a right cut holds at least this share of its digit's ink,
SLIVER = 0.15  # and of other digits' ink at most this share of its digit's
PART = 0.7  # a wrong cut holds less than this share of every digit's ink,
SECOND = 0.35  # or this share of a second digit's
KEEP_WRONG = 0.06  # most candidates are wrong: a share of them is kept, about as many as right ones
MAX_WIDTH = 1000  # pixels: numbers stay inside the reader's work frame (its pixels are the image's)


def wrong_cuts(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int, processes: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """`count` candidates cut from numbers written with `images` (uint8 MNIST), as uint8 (n, 28, 28) with
    their labels: a digit, or NOT_A_DIGIT. Candidates neither clearly right nor clearly wrong are left out.
    With several `processes`, each writes its share with its own seed (the result depends on both)."""
    processes = min(processes, count)
    if count <= 0:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    if processes > 1:
        shares = [count // processes + (i < count % processes) for i in range(processes)]
        jobs = [(images, labels, share, seed * 1000 + i) for i, share in enumerate(shares)]
        # spawn: a fresh interpreter per worker (forking a process that runs TensorFlow can hang).
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            parts = pool.starmap(wrong_cuts, jobs)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    rng = np.random.default_rng(seed)
    out_images: list[np.ndarray] = []
    out_labels: list[int] = []
    while len(out_labels) < count:
        picked = rng.choice(len(labels), size=int(rng.integers(2, 6)), replace=False)
        layers = _written(images[picked], rng, touching=rng.uniform() < 0.7)
        segmented = segment_number(_rendered(layers.max(axis=0), rng), masks=True)
        mass = layers.sum(axis=(1, 2))
        for candidate in segmented.candidates:
            kind = cut_kind(layers, mass, candidate)
            if kind >= 0:
                label = int(labels[picked][kind])
            elif kind == NOT_A_DIGIT:
                if rng.uniform() > KEEP_WRONG:
                    continue
                label = NOT_A_DIGIT
            else:
                continue
            out_images.append(np.round(candidate.pixels * 255).astype(np.uint8))
            out_labels.append(label)
    return np.stack(out_images[:count]), np.array(out_labels[:count], np.int64)


def cut_kind(layers: np.ndarray, mass: np.ndarray, candidate: Candidate) -> int:
    """What a candidate (from segment_number(..., masks=True)) holds of the digits written in `layers` (each
    digit's ink in its own layer, in the reader's work-frame pixels; `mass` their sums): the index of the
    digit it holds whole (a right cut), NOT_A_DIGIT (a wrong cut), or AMBIGUOUS (neither clearly).
    bench/read_accuracy.py judges its candidates by it too."""
    assert candidate.mask is not None
    top, left, mask = candidate.mask
    held = layers[:, top : top + mask.shape[0], left : left + mask.shape[1]][:, mask].sum(axis=1)
    inside = held / mass
    order = np.argsort(inside)[::-1]
    best = int(order[0])
    second = inside[order[1]] if len(order) > 1 else 0.0
    if inside[best] >= WHOLE and held.sum() - held[best] <= SLIVER * mass[best]:
        return best
    if inside[best] < PART or second >= SECOND:
        return NOT_A_DIGIT
    return AMBIGUOUS


def _written(digits: np.ndarray, rng: np.random.Generator, touching: bool) -> np.ndarray:
    """The digits' ink (0..1) side by side on one line, each in its own layer: 36-110 pixels tall, each
    scaled 0.8-1.2x, slanted and turned up to 10 degrees and moved up or down a little; drawn with MNIST's
    brush or, more often, re-drawn by a pen 4-14% of the height wide (training.pens); each neighbour's ink
    1-3 pixels into the one before it (touching) or 3-25% of the height apart."""
    height = float(rng.uniform(36, 110))
    pen = rng.uniform(0.04, 0.14) * height if rng.uniform() < 0.6 else None
    softness = rng.uniform(0.5, 1.0)
    pieces = []
    for digit in digits:
        rows, cols = np.nonzero(digit)
        ink = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32) / 255
        scale = rng.uniform(0.8, 1.2) * height / ink.shape[0]
        size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
        ink = np.clip(cv2.resize(np.pad(ink, 2), (size[0] + 4, size[1] + 4), interpolation=cv2.INTER_LINEAR), 0, 1)
        ink = slanted(ink, rng, 10)
        if pen is not None:
            ink = redrawn(ink, pen, softness)
        rows, cols = np.nonzero(ink > 0.02)
        if len(rows):
            ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        pieces.append(ink)
    canvas_height = int(height * 2)
    width = min(sum(p.shape[1] for p in pieces) + int(height) * (len(pieces) + 1), MAX_WIDTH)
    layers = np.zeros((len(pieces), canvas_height, width), np.float32)
    line = InkLine(canvas_height)
    x = int(height * 0.3)
    for index, piece in enumerate(pieces):
        bottom = int(height * 1.6 + rng.normal(0, 0.08) * height)
        top = min(max(bottom - piece.shape[0], 0), canvas_height - piece.shape[0])
        if (meets := line.meets(piece, top)) is not None:
            gap = -int(rng.integers(1, 4)) if touching else int(height * rng.uniform(0.03, 0.25))
            x = max(meets + gap, 0)
        if x + piece.shape[1] > width or piece.shape[0] > canvas_height:
            return layers[:index] if index >= 2 else _written(digits[:2], rng, touching)
        layers[index, top : top + piece.shape[0], x : x + piece.shape[1]] = piece
        line.add(piece, top, x)
        x += piece.shape[1]
    return layers


def slanted(ink: np.ndarray, rng: np.random.Generator, degrees: float) -> np.ndarray:
    """`ink` turned and sheared by up to `degrees` each way, cropped to its ink. bench/renderings.py tilts
    its digits with it too."""
    angle, shear = rng.uniform(-degrees, degrees), np.tan(np.radians(rng.uniform(-degrees, degrees)))
    height, width = ink.shape
    pad = int(0.4 * max(height, width))
    canvas = cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    centre = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    matrix[0, 1] += shear
    matrix[0, 2] -= shear * centre[1]
    out = cv2.warpAffine(canvas, matrix, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_LINEAR)
    rows, cols = np.nonzero(out > 0.02)
    return np.asarray(out[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], np.float32)


class InkLine:
    """A line of writing, row by row: where each row's ink ends so far. Places the next digit by its ink, not
    its box (slanted digits' boxes overlap when their ink does not). bench/read_accuracy.py writes with it too."""

    def __init__(self, height: int) -> None:
        self.right = np.full(height, -1, np.int64)  # the ink's rightmost column in each row (-1: none yet)

    def meets(self, piece: np.ndarray, top: int) -> int | None:
        """The column at which `piece` (ink above 0.3), its top row at `top`, starts so that its ink just
        meets the ink so far in some shared row; None when no row with ink is shared."""
        rows = np.arange(top, top + piece.shape[0])
        solid = piece > 0.3
        has = solid.any(axis=1)
        ended = self.right[rows[has]]
        if not (ended >= 0).any():
            return None
        first = solid.argmax(axis=1)[has]
        return int((ended - first)[ended >= 0].max()) + 1

    def add(self, piece: np.ndarray, top: int, x: int) -> None:
        rows = np.arange(top, top + piece.shape[0])
        solid = piece > 0.3
        has = solid.any(axis=1)
        last = piece.shape[1] - 1 - np.argmax(solid[:, ::-1], axis=1)
        self.right[rows[has]] = np.maximum(self.right[rows[has]], x + last[has])


def _rendered(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A canvas export (black strokes on transparent, PNG), a scan (grey paper, a dark pen, sensor noise,
    PNG) or a photo of paper (uneven light, sometimes ruled lines, a coloured pen, blur, noise, JPEG)."""
    kind = rng.uniform()
    buffer = io.BytesIO()
    if kind < 0.35:
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., 3] = np.round(ink * 255).astype(np.uint8)
        Image.fromarray(rgba).save(buffer, format="PNG")
    elif kind < 0.65:
        paper = rng.uniform(200, 245)
        gray = paper * (1 - ink * rng.uniform(0.75, 0.95)) + rng.normal(0, 2, ink.shape)
        Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    else:
        height, width = ink.shape
        rgb = np.ones((height, width, 3), np.float32)
        if rng.uniform() < 0.5:  # ruled paper: pale blue lines about a writing's height apart
            spacing = rng.uniform(0.3, 0.6) * height
            rows = np.arange(rng.uniform(0, spacing), height, spacing).astype(np.int64)
            rgb[rows] *= np.array([0.75, 0.8, 0.95], np.float32)
        pen = np.array([0.25, 0.25, 0.25] if rng.uniform() < 0.5 else [0.2, 0.25, 0.55], np.float32)
        strength = ink * rng.uniform(0.6, 1.0)
        rgb *= 1 - strength[..., None] * (1 - pen)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height) * rng.uniform(0, 0.35)
        rgb *= (1 - ramp + ramp.max() / 2)[..., None] * rng.uniform(150, 240)
        blurred = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.4, 1.3))
        noisy = blurred + rng.normal(0, rng.uniform(1, 5), rgb.shape)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        image.save(buffer, format="JPEG", quality=int(rng.integers(55, 92)))
    return buffer.getvalue()
