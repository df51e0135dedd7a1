"""The reading of a number from its candidate digits (app.imaging.segment) and the model's probabilities
of each: per cluster, the path through its cut points whose digits the model is most sure of.

No prior on widths or cuts: the reading model is trained to doubt what is not one digit (training.wrong_cuts),
so its probabilities alone choose the cuts. Measured: widths weighed by how usual they are for each digit and
a cost per stroke cut both made the readings worse (bench/read_accuracy.py's numbers, tuned on seed 7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.imaging.segment import MAX_PART_WIDTH, Segmented

EMPTY = -1  # a stretch of a reading's path that is left out (too short to be a digit)
# A cluster none of whose digits the model gives this probability is not part of the number (a wrong cut
# gets about 0.1 for every class). 0.3 rather than 0.5 keeps odd but whole digits: on the tuning seed (11, 100
# numbers per row) separated canvas numbers 94% -> 95% and photos 82% -> 83%, nothing read worse.
NOT_A_DIGIT = 0.3
SKIP_COST = 4.0  # leaving out a stretch too short to be a digit, per writing's height of ink it holds


@dataclass(frozen=True)
class ReadDigit:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Reading:
    digits: list[ReadDigit]
    reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)

    @property
    def confidence(self) -> float | None:
        """That of the least certain digit: a reading is as right as its weakest digit."""
        return min((d.confidence for d in self.digits), default=None)


def read_number(segmented: Segmented, probabilities: np.ndarray) -> Reading:
    """The reading whose digits the model is most sure of: per cluster, the cuts that maximise the product
    of their digits' probabilities. `probabilities` has a row per candidate, in order."""
    if segmented.reason is not None:
        return Reading([], segmented.reason)
    best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    log_p = np.log(np.maximum(probabilities.max(axis=1, initial=0.0), 1e-9))
    # A candidate wider than a digit can be (a cluster taken whole, offered so that a reading always has a
    # path to the cluster's end) hides several digits: its doubt counts once per digit's width it spans.
    # Else a wide cluster the model doubts whole (0.1) outweighs a path of sure digits with one doubtful
    # stretch (a printed line's remnant joining a number), and the reading is empty.
    widths = np.array([c.box[2] / (MAX_PART_WIDTH * c.box[3]) for c in segmented.candidates], np.float64)
    log_p = log_p * np.maximum(widths, 1.0)
    digits: list[ReadDigit] = []
    for cluster in segmented.clusters:
        # Best path through the cut points (a longest-path DP over a DAG ordered left to right).
        score = np.full(cluster.points, -np.inf)
        back = np.zeros(cluster.points, np.int64)
        took = np.full(cluster.points, EMPTY)
        score[0] = 0.0
        steps = [(key, i, log_p[i]) for key, indices in cluster.parts.items() for i in indices]
        steps += [(key, EMPTY, -SKIP_COST * mass) for key, mass in cluster.skips.items()]
        for (start, end), index, gain in sorted(steps, key=lambda step: step[0][1]):
            if score[start] + gain > score[end]:
                score[end], back[end], took[end] = score[start] + gain, start, index
        path, point = [], cluster.points - 1
        while point > 0:
            path.append(int(took[point]))
            point = int(back[point])
        found = [
            ReadDigit(int(best[i]), float(probabilities[i, best[i]]), segmented.candidates[i].box)
            for i in reversed(path)
            if i != EMPTY
        ]
        if any(digit.confidence >= NOT_A_DIGIT for digit in found):
            digits += found  # else the model doubts all of it: a mark, a smudge, what is left of a printed line
    return Reading(digits, None if digits else "no_digit")


def thick_lines_may_help(segmented: Segmented, reading: Reading) -> bool:
    """Whether to segment the image again with `thick_lines` (and read that instead when it reads digits): a
    photo read as no digit at all. Its printed lines may have been too thick to be taken for lines (a tight
    photo of a number is wide and low), joining its digits into ink the model doubts everywhere (bench seed 0:
    5 of 200 separated photos answered so; 3 of them read right with thicker lines removed)."""
    return segmented.photo and not reading.digits
