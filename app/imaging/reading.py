"""The reading of a number from its candidate digits (app.imaging.segment) and the model's probabilities
of each: per cluster, the path through its cut points whose digits the model is most sure of.

No prior on widths or cuts: the reading model is trained to doubt what is not one digit (training.wrong_cuts),
so its probabilities alone choose the cuts. Measured: widths weighed by how usual they are for each digit and
a cost per stroke cut both made the readings worse (bench/read_accuracy.py's numbers, tuned on seed 7)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.imaging import ctc
from app.imaging.segment import MAX_PART_WIDTH, Cluster, Segmented

EMPTY = -1  # a stretch of a reading's path that is left out (too short to be a digit)
# A cluster none of whose digits the model gives this probability is not part of the number (a wrong cut
# gets about 0.1 for every class). 0.3 rather than 0.5 keeps odd but whole digits: on the tuning seed (11, 100
# numbers per row) separated canvas numbers 94% -> 95% and photos 82% -> 83%, nothing read worse.
NOT_A_DIGIT = 0.3
SKIP_COST = 4.0  # leaving out a stretch too short to be a digit, per writing's height of ink it holds
LINE_WEIGHT = 1.0  # the line reader's log probability of a text, against the classifier's path's (tuned: seeds 11, 7)
BEAM = 8  # the line reader's likeliest texts weighed
LINE_DIGITS = 12  # the line reader was trained on lines of 1-10 digits: longer readings go without it


@dataclass(frozen=True)
class ReadDigit:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Reading:
    digits: list[ReadDigit]
    reason: str | None = None
    posterior: float | None = None  # the text's share of the texts weighed with a line reader (`_agreed`)

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)

    @property
    def confidence(self) -> float | None:
        """With a line reader, the text's posterior among the texts weighed (`_agreed`); else that of the
        least certain digit (a reading is as right as its weakest digit). The posterior is the better
        calibrated: on the dev numbers (seeds 11 and 7, 948 readings, lenet5-read/5) its expected calibration
        error is 0.074 and 0.071 against the least certain digit's 0.100 and 0.126, and the 80% of readings it
        is surest of are 95.3% and 95.2% right against 92.6% and 91.5%."""
        return self.posterior if self.posterior is not None else self.weakest

    @property
    def weakest(self) -> float | None:
        """The least certain digit's confidence (None without digits)."""
        return min((d.confidence for d in self.digits), default=None)


def read_number(segmented: Segmented, probabilities: np.ndarray, line: np.ndarray | None = None) -> Reading:
    """The reading whose digits the model is most sure of: per cluster, the cuts that maximise the product
    of their digits' probabilities. `probabilities` has a row per candidate, in order. With `line`, the
    version's line reader's CTC log-probabilities for the whole number ((frames, 11), or (views, frames, 11)
    for app.imaging.line.views of segmented.line, the line itself first), the reading whose text both agree
    on best (`_agreed`)."""
    if segmented.reason is not None:
        return Reading([], segmented.reason)
    best = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    log_p = np.log(np.maximum(probabilities.max(axis=1, initial=0.0), 1e-9)) * _widths(segmented)
    digits: list[ReadDigit] = []
    kept: list[bool] = []  # whether each cluster is part of the number
    for cluster in segmented.clusters:
        found = [
            ReadDigit(int(best[i]), float(probabilities[i, best[i]]), segmented.candidates[i].box)
            for i in _best_path(cluster, lambda i: float(log_p[i]))
        ]
        kept.append(any(digit.confidence >= NOT_A_DIGIT for digit in found))
        if kept[-1]:
            digits += found  # else the model doubts all of it: a mark, a smudge, what is left of a printed line
    reading = Reading(digits, None if digits else "no_digit")
    if line is None or not digits or len(digits) > LINE_DIGITS:
        return reading
    return _agreed(segmented, probabilities, kept, line if line.ndim == 3 else line[None], reading)


def finer_cuts_wanted(reading: Reading, line: np.ndarray | None) -> bool:
    """Whether the image is worth a second look, cut again with narrower pieces cut too (segment_number's
    `wide_piece=FINER_WIDE_PIECE`): with a line reader (`line` as read_number takes it), when its likeliest text has
    more digits than the reading (none, when the model doubted a narrow pair of touching digits taken
    whole; or one digit too few)."""
    if line is None:
        return False
    best = ctc.beam_search(line if line.ndim == 2 else line[0], 1)
    return bool(best) and len(best[0][0]) > len(reading.digits)


def _widths(segmented: Segmented) -> np.ndarray:
    """A candidate wider than a digit can be (a cluster taken whole, offered so that a reading always has a
    path to the cluster's end) hides several digits: its doubt counts once per digit's width it spans.
    Else a wide cluster the model doubts whole (0.1) outweighs a path of sure digits with one doubtful
    stretch (a printed line's remnant joining a number), and the reading is empty."""
    widths = np.array([c.box[2] / (MAX_PART_WIDTH * c.box[3]) for c in segmented.candidates], np.float64)
    return np.maximum(widths, 1.0)


def _best_path(cluster: Cluster, gain: Callable[[int], float]) -> list[int]:
    """The candidates (EMPTY: a stretch left out) of the path through the cluster's cut points with the
    highest total gain: a longest-path DP over a DAG ordered left to right."""
    score = np.full(cluster.points, -np.inf)
    back = np.zeros(cluster.points, np.int64)
    took = np.full(cluster.points, EMPTY)
    score[0] = 0.0
    steps = [(key, i, gain(i)) for key, indices in cluster.parts.items() for i in indices]
    steps += [(key, EMPTY, -SKIP_COST * mass) for key, mass in cluster.skips.items()]
    for (start, end), index, value in sorted(steps, key=lambda step: step[0][1]):
        if score[start] + value > score[end]:
            score[end], back[end], took[end] = score[start] + value, start, index
    path, point = [], cluster.points - 1
    while point > 0:
        path.append(int(took[point]))
        point = int(back[point])
    return [i for i in reversed(path) if i != EMPTY]


def _agreed(
    segmented: Segmented, probabilities: np.ndarray, kept: list[bool], views: np.ndarray, reading: Reading
) -> Reading:
    """Among the classifier's reading and the line reader's likeliest texts (ctc.beam_search of the line
    itself, `views[0]`), the text with the best sum of the log-probability of its best path through the cuts
    (each candidate read as the text's digit there: `_paths`) and LINE_WEIGHT times the line reader's
    (ctc.log_likelihood, its mean over the line's views). A text no path
    can read (too many or too few digits for the cuts) is not a reading: boxes come from the path. Each
    digit's confidence stays the classifier's for its candidate (low where the line reader overruled it); the
    reading's is its text's posterior: the softmax of the scores over the texts weighed."""
    log_p = np.log(np.maximum(probabilities, 1e-9)) * _widths(segmented)[:, None]
    digit = probabilities.argmax(axis=1)
    # the classifier's best reading of each length too: where the line reader's texts cannot be placed (a
    # digit too many for the cuts), the right one may still be among them
    lengths = _paths(segmented.clusters, kept, log_p, digit, None)
    texts = dict.fromkeys(  # ordered, so that ties fall the same way in every process
        [
            reading.text,
            *(text for text, _ in ctc.beam_search(views[0], BEAM)),
            *("".join(str(digit[i]) for i in path) for _, path in lengths.values()),
        ]
    )
    scored: list[tuple[float, list[int], str]] = []
    for text in texts:
        digits = [int(c) for c in text]
        placed = _paths(segmented.clusters, kept, log_p, digit, digits).get(len(digits)) if text else None
        if placed is not None:
            line = float(np.mean([ctc.log_likelihood(view, text) for view in views]))
            scored.append((placed[0] + LINE_WEIGHT * line, placed[1], text))
    if not scored:
        return reading
    scores = np.array([score for score, _, _ in scored])
    best = int(scores.argmax())  # the first of equals: texts are in a fixed order
    _, chosen, text = scored[best]
    return Reading(
        [
            ReadDigit(int(d), float(probabilities[i, int(d)]), segmented.candidates[i].box)
            for i, d in zip(chosen, text, strict=True)
        ],
        posterior=float(1 / np.exp(scores - scores[best]).sum()),
    )


# a state of `_paths`'s search: digits of the text read so far, and whether this cluster has read one yet
_State = tuple[int, bool]


def _paths(
    clusters: list[Cluster], kept: list[bool], log_p: np.ndarray, digit: np.ndarray, digits: list[int] | None
) -> dict[int, tuple[float, list[int]]]:
    """By the count of digits read: the best path through the clusters' cuts, as its score (the candidates'
    log probabilities) and its candidates. With `digits`, paths reading those digits in order (a count short
    of them: a path that read only their start); without, each candidate read as its likeliest `digit` (up to
    LINE_DIGITS). A cluster the classifier keeps reads at least one digit; one it leaves out (a mark) may read
    none: the line image holds its ink too, and the line reader may see a digit there."""
    limit = LINE_DIGITS if digits is None else len(digits)
    # read[j]: the best (score, candidates) having read the text's first j digits, after the clusters so far
    read: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
    for cluster, keep in zip(clusters, kept, strict=True):
        steps = sorted(
            [(key, i) for key, indices in cluster.parts.items() for i in indices]
            + [(key, EMPTY) for key in cluster.skips],
            key=lambda step: step[0][1],
        )
        at: list[dict[_State, tuple[float, list[int]]]] = [{} for _ in range(cluster.points)]
        at[0] = {(j, False): value for j, value in read.items()}
        for (start, end), i in steps:
            for (j, any_digit), (score, path) in at[start].items():
                if i == EMPTY:
                    state, value = (j, any_digit), (score - SKIP_COST * cluster.skips[(start, end)], path)
                elif j < limit:
                    read_as = digit[i] if digits is None else digits[j]
                    state, value = (j + 1, True), (score + float(log_p[i, read_as]), [*path, i])
                else:
                    continue
                if state not in at[end] or value[0] > at[end][state][0]:
                    at[end][state] = value
        options = [(j, value) for (j, any_digit), value in at[-1].items() if any_digit]
        if not keep:  # a mark: it may also be left out, the path coming in unchanged
            options += [(j, value) for (j, _), value in at[0].items()]
        read = {}
        for j, value in options:
            if j not in read or value[0] > read[j][0]:
                read[j] = value
        if not read:
            return {}
    return read
