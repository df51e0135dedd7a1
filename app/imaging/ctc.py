"""CTC on one line's frame log-probabilities (T, 11): class 0 is the blank, digit d is class d + 1 (the
convention of keras.losses.CTC). Pure numpy: what the line reader's output means, as text.

`log_likelihood` is the CTC forward algorithm (Graves et al. 2006): log p(text | frames), summed over every
alignment. `beam_search` is prefix beam search (Hannun et al. 2014): the likeliest texts. Both are checked
against TensorFlow's own (tf.nn.ctc_loss, keras.ops.ctc_decode) in tests/app/test_ctc.py."""

from __future__ import annotations

import itertools
import math

import numpy as np

BLANK = 0


def log_likelihood(log_probs: np.ndarray, text: str) -> float:
    """log p(text | frames) for (T, C) log-probabilities; -inf when the text cannot fit in T frames."""
    labels = [int(c) + 1 for c in text]
    extended = [BLANK]
    for label in labels:
        extended += [label, BLANK]
    states, frames = len(extended), len(log_probs)
    if frames == 0 or len(labels) + sum(a == b for a, b in itertools.pairwise(labels)) > frames:
        return float("-inf")
    ext = np.array(extended)
    # a state may be reached from two back when it is a label unlike the one two back (no blank needed between)
    skip = np.zeros(states, bool)
    skip[2:] = (ext[2:] != BLANK) & (ext[2:] != ext[:-2])
    alpha = np.full(states, -np.inf)
    alpha[0] = log_probs[0, BLANK]
    if states > 1:
        alpha[1] = log_probs[0, ext[1]]
    for t in range(1, frames):
        one, two = np.full(states, -np.inf), np.full(states, -np.inf)
        one[1:], two[2:] = alpha[:-1], alpha[:-2]
        alpha = np.logaddexp(np.logaddexp(alpha, one), np.where(skip, two, -np.inf)) + log_probs[t, ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if states > 1 else alpha[-1])


def beam_search(log_probs: np.ndarray, width: int = 8) -> list[tuple[str, float]]:
    """The likeliest texts with their log-probabilities (each summed over the alignments the beam kept),
    best first."""
    # prefix -> (log p ending in blank, log p ending in its last label). Python floats, not numpy scalars:
    # the loop runs frames x beams x classes times (about 6,000 per line).
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for frame in np.asarray(log_probs, np.float64).tolist():
        nxt: dict[tuple[int, ...], tuple[float, float]] = {}
        for prefix, (p_blank, p_label) in beams.items():
            total = _log_add(p_blank, p_label)
            _add(nxt, prefix, total + frame[BLANK], -math.inf)  # a blank: the prefix stays
            for c in range(1, len(frame)):
                if prefix and prefix[-1] == c:
                    _add(nxt, prefix, -math.inf, p_label + frame[c])  # the same label again: merged
                    _add(nxt, (*prefix, c), -math.inf, p_blank + frame[c])  # after a blank: a new one
                else:
                    _add(nxt, (*prefix, c), -math.inf, total + frame[c])
        beams = dict(sorted(nxt.items(), key=lambda item: -_log_add(*item[1]))[:width])
    out = [("".join(str(c - 1) for c in prefix), _log_add(*p)) for prefix, p in beams.items()]
    return sorted(out, key=lambda item: -item[1])


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _add(
    table: dict[tuple[int, ...], tuple[float, float]], prefix: tuple[int, ...], blank: float, label: float
) -> None:
    """Another way to `prefix`, ending in a blank or in its last label, added to those in `table`."""
    old_blank, old_label = table.get(prefix, (-math.inf, -math.inf))
    table[prefix] = (_log_add(old_blank, blank), _log_add(old_label, label))
