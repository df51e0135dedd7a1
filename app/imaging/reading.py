"""The reading of a number from its candidate digits (app.imaging.segment) and the model's probabilities
of each: per cluster, the path through its cut points whose digits the model is most sure of."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.imaging.segment import Segmented

EMPTY = -1  # a stretch of a reading's path that is left out (too short to be a digit)
# The model (trained with training.wrong_cuts) is unsure of what is not one digit, so a reading's score is
# mostly the sum of its digits' log probabilities. Each digit's width against its height, as a log, weighs a
# little too: median and robust spread measured on the MNIST test set (ink above 30%), the spread widened
# by a quarter (at least 0.25) for slant. A 1 is narrow; the others are 0.7-0.9 as wide as tall.
ASPECT_MEDIAN = np.array([-0.11, -0.92, -0.11, -0.22, -0.22, -0.11, -0.29, -0.29, -0.32, -0.36])
ASPECT_SPREAD = np.maximum(np.array([0.17, 0.47, 0.17, 0.2, 0.2, 0.27, 0.21, 0.21, 0.24, 0.23]) * 1.25, 0.25)
ASPECT_WEIGHT = 0.5  # of that shape's log-likelihood against the model's log probability
CUT_DOUBT = 0.3  # each stroke a cut crosses (touching digits meet in one)
DIGIT_BONUS = 0.0  # each digit read (against the product of probabilities' bias to fewer digits)
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
    aspect = np.log(np.array([max(c.aspect, 1e-3) for c in segmented.candidates]))
    # Each candidate's digit: the model's probability weighed by how usual the candidate's shape is for it.
    spread = (aspect[:, None] - ASPECT_MEDIAN) / ASPECT_SPREAD
    spread[:, 1] = np.maximum(spread[:, 1], 0)  # a 1 is never too narrow: a straight stroke is a 1
    shape = -0.5 * ASPECT_WEIGHT * spread**2
    scores = np.log(np.maximum(probabilities, 1e-9)) + shape
    best = scores.argmax(axis=1)
    log_p = scores.max(axis=1, initial=-np.inf)
    digits: list[ReadDigit] = []
    for cluster in segmented.clusters:
        # Best path through the cut points (a longest-path DP over a DAG ordered left to right).
        score = np.full(cluster.points, -np.inf)
        back = np.zeros(cluster.points, np.int64)
        took = np.full(cluster.points, EMPTY)
        score[0] = 0.0
        steps = [(key, i, log_p[i] + DIGIT_BONUS) for key, indices in cluster.parts.items() for i in indices]
        steps += [(key, EMPTY, -SKIP_COST * mass) for key, mass in cluster.skips.items()]
        for (start, end), index, gain in sorted(steps, key=lambda step: step[0][1]):
            total = score[start] + gain - CUT_DOUBT * cluster.strokes_cut[end]
            if total > score[end]:
                score[end], back[end], took[end] = total, start, index
        path, point = [], cluster.points - 1
        while point > 0:
            path.append(int(took[point]))
            point = int(back[point])
        for index in reversed([i for i in path if i != EMPTY]):
            candidate = segmented.candidates[index]
            digits.append(ReadDigit(int(best[index]), float(probabilities[index, best[index]]), candidate.box))
    return Reading(digits)
