"""app.imaging.ctc against TensorFlow's own CTC: the loss (tf.nn.ctc_loss) and the beam search
(keras.ops.ctc_decode), on the same frames."""

from __future__ import annotations

import numpy as np
import pytest

from app.imaging import ctc

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def frames(seed: int, length: int = 30, sharpness: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Random logits (1, T, 11) and their log-probabilities (T, 11)."""
    logits = np.random.default_rng(seed).normal(0, sharpness, (1, length, 11)).astype(np.float32)
    return logits, np.asarray(tf.nn.log_softmax(logits), np.float64)[0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("text", ["3", "33", "123", "0990", "7777"])
def test_log_likelihood_is_tensorflows_ctc_loss(seed, text):
    logits, log_probs = frames(seed)
    labels = tf.constant([[int(c) + 1 for c in text]], tf.int32)
    loss = tf.nn.ctc_loss(
        labels, logits, label_length=[len(text)], logit_length=[logits.shape[1]], logits_time_major=False, blank_index=0
    )
    assert ctc.log_likelihood(log_probs, text) == pytest.approx(-float(loss[0]), rel=1e-4)


def test_the_empty_text_is_blanks_throughout_and_a_text_longer_than_the_frames_impossible():
    _, log_probs = frames(0, length=5)
    assert ctc.log_likelihood(log_probs, "") == pytest.approx(log_probs[:, 0].sum())
    assert ctc.log_likelihood(log_probs, "123456") == float("-inf")
    assert ctc.log_likelihood(log_probs, "1111") == float("-inf")  # repeats need a blank between: 7 frames
    assert ctc.log_likelihood(log_probs, "111") > float("-inf")  # 1, blank, 1, blank, 1


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_finds_what_keras_finds(seed):
    # frames like a trained reader's: mostly sure of a blank or of one digit
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (1, 40, 11)).astype(np.float32)
    logits[0, np.arange(40), rng.choice([0, 0, 0, *range(1, 11)], 40)] += 6
    log_probs = np.asarray(tf.nn.log_softmax(logits), np.float64)[0]
    ours = ctc.beam_search(log_probs, width=8)
    paths, scores = keras.ops.ctc_decode(logits, [40], strategy="beam_search", beam_width=8, top_paths=3)
    theirs = ["".join(str(int(v) - 1) for v in path[0] if v > 0) for path in np.asarray(paths)]
    # the same best text and about its score (each sums the alignments its beam kept); the runners-up depend on each search's pruning, but keras' are among ours
    assert ours[0][0] == theirs[0] and ours[0][1] == pytest.approx(float(np.asarray(scores)[0, 0]), abs=0.02)
    assert set(theirs) <= {text for text, _ in ours}
    assert ours[0][1] == pytest.approx(ctc.log_likelihood(log_probs, ours[0][0]), abs=0.05)
