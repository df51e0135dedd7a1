"""How well does `POST /read` read handwritten numbers?

Composes numbers of 2-8 MNIST test digits the way people write them: digits of different heights
(0.8-1.2x), a wavy baseline, a slight tilt per digit, and spacing either separated (ink 8% to 50% of
a digit's height apart, row by row, so boxes of slanted digits may overlap) or touching (every neighbour's
ink meets the next one's). Each number is rendered as a browser canvas export (transparent RGBA PNG),
a flatbed scan (grey paper, pen strokes, PNG) and a phone photo of paper (plain or ruled, lighting,
perspective, blur, noise, JPEG; bench/renderings.py's effects). It runs in-process, as the route does:
app.imaging.segment's candidates, one model call per image (and one for its line when the version has a
line reader), the reading chosen from the probabilities (and the line reader's frames).
Prints whole-number and per-digit accuracy per condition and the time per request, and where the
rendering keeps the number in place (canvas, scan) how many numbers the reader would read with a
model that is sure of every right cut and doubts every other: "right cuts offered", each candidate
judged by the digits' ink it holds, by the standard the reading model's training labels its cuts with.
Last, how well the readings' confidence tells right from wrong (over all conditions): its expected
calibration error, and the share right of the 80% of readings it is surest of, beside the same for the
least certain digit's confidence.

    .venv/bin/python bench/read_accuracy.py --n 200        # the reading model, models/lenet5-read/6
    .venv/bin/python bench/read_accuracy.py --n 200 --no-line-reader   # its classifier alone (v3's reading)
    .venv/bin/python bench/read_accuracy.py --n 200 --model models/lenet5-read/2   # LeNet-5 alone
    .venv/bin/python bench/read_accuracy.py --n 1000 --seed 21 22 --only "photo JPEG, separated"   # two draws as one
    .venv/bin/python bench/read_accuracy.py --n 100 --turn 20   # the same numbers written 20 degrees off level
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy.stats import binomtest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # runnable as a plain script from any folder
sys.path.insert(0, str(REPO_ROOT / "bench"))

from mnist_file import add_data_argument, require_data
from preprocess_accuracy import Predict
from renderings import LEVELS, _lighting, _perspective, _ruling, _thinned, _tilt, encode, stroke

from app.imaging.decode import shrink
from app.imaging.line import views
from app.imaging.reading import Reading, finer_cuts_wanted, read_number
from app.imaging.segment import FINER_WIDE_PIECE, NUMBER_SIDE, Segmented, segment_number
from app.model import SavedModelDigits
from training.wrong_cuts import InkLine, cut_kind

# ink 0..1 of the whole number, the digits' mean height in pixels, and each digit's ink in its own layer
Number = tuple[np.ndarray, float, np.ndarray]
ReadLines = Callable[[np.ndarray], np.ndarray | None]  # lines (n, 32, 320, 1) -> CTC log-probabilities
Medium = Callable[[Number, np.random.Generator], bytes]


def compose(digits: np.ndarray, rng: np.random.Generator, touching: bool, pen: float | None = None) -> Number:
    """The digits' strokes side by side on one wavy line: each scaled, tilted and placed by its ink, either
    8% to half a height from its left neighbour's ink or touching it. `pen`: stroke width as a share
    of the height (None keeps MNIST's brush). Each digit's ink is kept in its own layer as well."""
    height = float(rng.uniform(50, 110))
    wave_phase, wave = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.12) * height
    pieces = []
    for digit in digits:
        ink = stroke(digit, int(height * rng.uniform(0.8, 1.2)))
        if pen is not None:
            ink = _thinned(ink, pen)
        pieces.append(_tilt(ink, rng, 8))
    canvas = np.zeros((int(height * 3), int(sum(p.shape[1] for p in pieces) + height * (len(pieces) + 2))), np.float32)
    layers = np.zeros((len(pieces), *canvas.shape), np.float32)
    line = InkLine(canvas.shape[0])
    x = int(height * 0.5)
    for index, piece in enumerate(pieces):
        bottom = height * 2.2 + wave * np.sin(wave_phase + index * 1.1) + rng.normal(0, 0.04) * height
        top = int(bottom - piece.shape[0])
        if (meets := line.meets(piece, top)) is not None:
            gap = -int(rng.integers(1, 4)) if touching else int(height * rng.uniform(0.08, 0.5))
            x = max(meets + gap, 0)  # a digit whose only shared rows are at its far right
        window = canvas[top : top + piece.shape[0], x : x + piece.shape[1]]
        np.maximum(window, piece, out=window)
        layers[index, top : top + piece.shape[0], x : x + piece.shape[1]] = piece
        line.add(piece, top, x)
        x += piece.shape[1]
    rows, cols = np.nonzero(canvas > 0.02)
    margin = int(height * 0.4)
    top, left = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
    crop = (slice(top, rows.max() + margin), slice(left, cols.max() + margin))
    return canvas[crop], height, layers[(slice(None), *crop)]


def turned(number: Number, degrees: float) -> Number:
    """The number written turned by `degrees` (anticlockwise as shown), on a canvas that holds all of it: its ink and
    each digit's layer alike."""
    ink, height, layers = number
    h, w = ink.shape
    a = np.radians(degrees)
    size = (
        int(np.ceil(w * abs(np.cos(a)) + h * abs(np.sin(a)))),
        int(np.ceil(w * abs(np.sin(a)) + h * abs(np.cos(a)))),
    )
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    turn[:, 2] += np.array([(size[0] - w) / 2, (size[1] - h) / 2])

    def warp(values: np.ndarray) -> np.ndarray:
        return np.clip(cv2.warpAffine(values, turn, size, flags=cv2.INTER_LINEAR, borderValue=0.0), 0, 1)

    return warp(ink), height, np.stack([warp(layer) for layer in layers])


def canvas_png(number: Number, rng: np.random.Generator) -> bytes:
    """A browser canvas export: black strokes on a transparent background."""
    ink = number[0]
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = np.round(ink * 255).astype(np.uint8)
    return encode(Image.fromarray(rgba), "PNG")


def scan_png(number: Number, rng: np.random.Generator) -> bytes:
    """A flatbed scan: near-white or grey paper, a dark pen, a little sensor noise."""
    ink = number[0]
    paper = rng.uniform(200, 245)
    gray = paper * (1 - ink * rng.uniform(0.75, 0.95)) + rng.normal(0, 2, ink.shape)
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)), "PNG")


def photo_jpeg(number: Number, rng: np.random.Generator) -> bytes:
    """A phone photo of the number on paper (plain or ruled), at the 'easy' to 'medium' level of
    bench/renderings.py: ballpoint or pencil, lighting gradient and vignetting, sometimes a shadow,
    perspective, blur, noise, JPEG."""
    ink, height, _ = number
    spec = LEVELS["easy" if rng.uniform() < 0.5 else "medium"]
    pad = int(height * 0.6)
    share = np.pad(ink, pad) * rng.uniform(*spec.contrast)
    shape = share.shape
    lines = _ruling("ruled" if rng.uniform() < 0.5 else "plain", shape, rng)
    pencil = rng.uniform() < 0.5
    ink_colour = np.array([0.25, 0.25, 0.25]) if pencil else np.array([0.2, 0.25, 0.55])
    line_colour = np.array([0.7, 0.75, 0.95])
    rgb = 1 - lines[..., None] * (1 - line_colour)
    rgb = rgb * (1 - share[..., None] * (1 - ink_colour) / (1 - ink_colour.min()))
    rgb = _perspective(rgb, rng, spec.perspective / 2)
    light = _lighting(shape, rng, spec, None)
    rgb = rgb * light[..., None] * np.array([1.0, rng.uniform(0.94, 1.0), rng.uniform(0.85, 0.97)])
    rgb = rgb * (rng.uniform(200, 245) if rng.uniform() < 0.6 else rng.uniform(150, 200))
    rgb = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), rng.uniform(*spec.blur))
    rgb = rgb + rng.normal(0, rng.uniform(*spec.noise), rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return encode(image, "JPEG", quality=int(rng.integers(spec.quality[0], spec.quality[1] + 1)))


# medium: its renderer, its pen's width as a share of the height (None: MNIST's brush), and whether the
# rendering keeps the number's pixels where they were (so each candidate can be judged by the digits' ink)
MEDIA: dict[str, tuple[Medium, tuple[float, float] | None, bool]] = {
    "canvas RGBA PNG": (canvas_png, None, True),
    "scan PNG": (scan_png, (0.07, 0.12), True),  # pen strokes of 7-12% of the height
    "phone photo JPEG": (photo_jpeg, (0.05, 0.1), False),  # padded, turned in perspective
}


def right_cuts_offered(number: Number, segmented: Segmented, truth: str) -> bool:
    """Whether the reading would be right if the model were: the reading chosen as the reader chooses it
    (app.imaging.reading) from probabilities that are sure of each candidate holding one whole digit (as
    training.wrong_cuts judges it: at least 90% of its ink, at most 15% of another's) and doubt every
    other one. False means no path through the cuts holds every digit whole by that standard. Not a
    ceiling: the model also reads digits from cuts that miss a little of their ink or hold more of a
    neighbour's (on touching numbers it reads more numbers right than this)."""
    layers = np.stack([shrink(layer, NUMBER_SIDE) for layer in number[2]])  # in the reader's work frame
    mass = layers.sum(axis=(1, 2))
    probabilities = np.full((len(segmented.candidates), 10), 0.1, np.float32)
    for index, candidate in enumerate(segmented.candidates):
        if (digit := cut_kind(layers, mass, candidate)) >= 0:
            probabilities[index] = 0.001
            probabilities[index, int(truth[digit])] = 0.991
    return read_number(segmented, probabilities).text == truth


def predict_all(predict: Predict, segmented: Segmented) -> np.ndarray:
    """The model's probabilities for every candidate of an image, in one call (none: no call)."""
    pixels = segmented.pixels
    return predict(pixels) if len(pixels) else np.zeros((0, 10), np.float32)


def read(
    predict: Predict, read_lines: ReadLines | None, segmented: Segmented, data: bytes, masks: bool
) -> tuple[Reading, Reading]:
    """The reading as POST /read makes it (the candidates' probabilities, and the version's line reader's
    frames for the views of the image's line when it has one; a second look with finer cuts where the line
    reader counts more digits), and the classifier's alone from the first look's probabilities."""
    probabilities = predict_all(predict, segmented)
    frames = None
    if read_lines is not None and segmented.line is not None and segmented.candidates:
        frames = read_lines(views(segmented.line)[..., None])
    reading = read_number(segmented, probabilities, frames)
    if finer_cuts_wanted(reading, frames):
        finer = segment_number(data, masks=masks, wide_piece=FINER_WIDE_PIECE)
        reading = read_number(finer, predict_all(predict, finer), frames)
    return reading, read_number(segmented, probabilities)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def interval(right: int, total: int) -> tuple[float, float]:
    """The 95% confidence interval of a share right (`right` of `total`), Wilson's score interval: whether a
    row's figure is over a target, or two runs' figures differ, beyond what the numbers drawn decide."""
    found = binomtest(right, total).proportion_ci(confidence_level=0.95, method="wilson")
    return float(found.low), float(found.high)


def calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the gap between confidence and accuracy in ten bins of confidence,
    weighed by their share of the readings."""
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    return float(
        sum(
            (which == b).mean() * abs(confidence[which == b].mean() - right[which == b].mean())
            for b in np.unique(which)
        )
    )


def surest_right(confidence: np.ndarray, right: np.ndarray, share: float) -> float:
    """The share right of the `share` of readings the confidence is surest of."""
    keep = np.argsort(-confidence, kind="stable")[: int(share * len(confidence))]
    return float(right[keep].mean())


@dataclass
class Tally:
    """One condition's counts, over every seed read."""

    numbers: int = 0
    right: int = 0
    right_alone: int = 0
    digits_right: int = 0
    digits_total: int = 0
    candidates: int = 0
    offered: int = 0
    elapsed: float = 0.0
    shown: int = 0

    def count(self, truth: str, text: str, alone: str, candidates: int, offered: bool, elapsed: float) -> None:
        """One number: its digits, the reading's and the classifier's alone, and what reading it took."""
        self.numbers += 1
        self.right += text == truth
        self.right_alone += alone == truth
        self.digits_right += max(0, len(truth) - edit_distance(text, truth))
        self.digits_total += len(truth)
        self.candidates += candidates
        self.offered += offered
        self.elapsed += elapsed

    def row(self, medium: str, spacing: str, in_place: bool) -> str:
        low, high = interval(self.right, self.numbers)
        return (
            f"| {medium} | {spacing} | {100 * self.right / self.numbers:.1f}% ({100 * low:.1f}-{100 * high:.1f}) "
            f"| {100 * self.digits_right / self.digits_total:.1f}% "
            f"| {f'{100 * self.offered / self.numbers:.1f}%' if in_place else 'n/a'} "
            f"| {self.candidates / self.numbers:.1f} | {1000 * self.elapsed / self.numbers:.0f} "
            f"| {100 * self.right_alone / self.numbers:.1f}% |"
        )


HEADER = (
    "| medium | spacing | whole numbers right (95% interval) | digits right | right cuts offered | candidates per number "
    "| ms per number | the classifier alone: whole numbers right |\n|---|---|---:|---:|---:|---:|---:|---:|"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="numbers per condition")
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="the draw; several: each seed's numbers as it draws them alone, the rows counting them together",
    )
    add_data_argument(parser)
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "lenet5-read" / "6")
    parser.add_argument(
        "--only",
        default="",
        help="only conditions whose title contains this text (the same numbers as in the whole table)",
    )
    parser.add_argument("--show", type=int, default=0, help="print this many misread numbers per condition")
    parser.add_argument("--no-line-reader", action="store_true", help="read with the classifier's cuts alone")
    parser.add_argument(
        "--turn",
        type=float,
        default=0.0,
        help="write each number turned this many degrees, every other one the other way (a phone held at a slant)",
    )
    args = parser.parse_args(argv)
    if not any(args.only in f"{medium}, {spacing}" for medium in MEDIA for spacing in ("separated", "touching")):
        parser.error(f"--only {args.only!r} matches no condition (e.g. 'phone photo JPEG, separated')")
    require_data(parser, args.data)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with np.load(args.data) as data:
        images, labels = data["x_test"], data["y_test"].astype(np.int64)
    model = SavedModelDigits(args.model)  # the service's own loading: its line reader too, when it has one
    read_lines = None if args.no_line_reader else model.read_lines

    def predict(pixels: np.ndarray) -> np.ndarray:
        return model.predict(pixels[..., None])

    line = (
        "without" if read_lines is None or model.read_lines(np.zeros((1, 32, 320, 1), np.float32)) is None else "with"
    )
    seeds = ", ".join(map(str, args.seed))
    print(
        f"model {args.model} ({line} a line reader), {args.n} numbers of 2-8 MNIST test digits per condition, "
        f"{'seed' if len(args.seed) == 1 else f'{args.n * len(args.seed)} in all: seeds'} {seeds}"
        f"{f', turned {args.turn:g} degrees either way' if args.turn else ''}\n"
    )
    pooled = len(args.seed) > 1  # rows at the end, each seed's row as it is read (on stderr)
    print(HEADER, file=sys.stderr if pooled else sys.stdout)
    sure: list[tuple[float, float, bool]] = []  # each reading's confidence, its least certain digit's, right
    tallies: dict[str, Tally] = {}
    for seed in args.seed:
        rng = np.random.default_rng(seed)
        for spacing in ("separated", "touching"):
            for medium, (render, pen, in_place) in MEDIA.items():
                title = f"{medium}, {spacing}"
                measured = args.only in title  # the others are drawn all the same: --only reads the table's numbers
                tally, this_seed = tallies.setdefault(title, Tally()), Tally()
                for index in range(args.n):
                    picked = rng.choice(len(labels), size=int(rng.integers(2, 9)), replace=False)
                    truth = "".join(str(d) for d in labels[picked])
                    pen_width = None if pen is None else rng.uniform(*pen)
                    number = compose(images[picked], rng, spacing == "touching", pen_width)
                    if args.turn:  # the same numbers, written at a slant (no draw of its own)
                        number = turned(number, args.turn if index % 2 == 0 else -args.turn)
                    data_bytes = render(number, rng)
                    if not measured:
                        continue
                    started = time.perf_counter()
                    segmented = segment_number(data_bytes, masks=in_place)  # each candidate's ink crop (microseconds)
                    reading, alone = read(predict, read_lines, segmented, data_bytes, in_place)
                    elapsed = time.perf_counter() - started
                    text = reading.text
                    if reading.confidence is not None and reading.weakest is not None:
                        sure.append((reading.confidence, reading.weakest, text == truth))
                    offered = in_place and right_cuts_offered(number, segmented, truth)
                    for counts in (tally, this_seed):
                        counts.count(truth, text, alone.text, len(segmented.candidates), offered, elapsed)
                    if text != truth and tally.shown < args.show:
                        tally.shown += 1
                        print(f"    {title}: read {text!r} for {truth!r}", file=sys.stderr)
                if measured:
                    seed_row = this_seed.row(medium, spacing, in_place)
                    print(f"seed {seed}: {seed_row}" if pooled else seed_row, file=sys.stderr if pooled else sys.stdout)
                    sys.stdout.flush()
    if pooled:
        print(HEADER)
        for spacing in ("separated", "touching"):
            for medium, (_, _, in_place) in MEDIA.items():
                if tallies[f"{medium}, {spacing}"].numbers:
                    print(tallies[f"{medium}, {spacing}"].row(medium, spacing, in_place))
    if sure:
        confidence, weakest, right_ones = (np.array(column) for column in zip(*sure, strict=True))
        print(
            f"\nconfidence of {len(sure)} readings: calibration error {calibration_error(confidence, right_ones):.3f} "
            f"(the least certain digit's: {calibration_error(weakest, right_ones):.3f}); the 80% it is surest of "
            f"{100 * surest_right(confidence, right_ones, 0.8):.1f}% right "
            f"(by the least certain digit: {100 * surest_right(weakest, right_ones, 0.8):.1f}%)"
        )


if __name__ == "__main__":
    main()
