from __future__ import annotations

import numpy as np
import pytest

from training.calibration import expected_calibration_error, fit_temperature, nll, scale


def smoothed_answers(n: int = 2000, accuracy: float = 0.99, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What a label-smoothed model answers: about 0.9 on its pick whether right or wrong."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    picked = np.where(rng.uniform(size=n) < accuracy, labels, (labels + 1) % 10)
    probabilities = np.full((n, 10), 0.1 / 9)
    probabilities[np.arange(n), picked] = 0.9
    return probabilities, labels


def test_scaling_keeps_every_answer_and_sums_to_one() -> None:
    probabilities, _ = smoothed_answers()
    scaled = scale(probabilities, 0.3)
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    np.testing.assert_allclose(scale(probabilities, 1.0), probabilities)


def test_an_underconfident_model_is_sharpened_until_confidence_matches_accuracy() -> None:
    probabilities, labels = smoothed_answers(accuracy=0.99)
    temperature = fit_temperature(probabilities, labels)
    assert temperature < 1
    scaled = scale(probabilities, temperature)
    assert expected_calibration_error(probabilities, labels) > 0.08
    assert expected_calibration_error(scaled, labels) < 0.01
    assert scaled.max(axis=1).mean() == pytest.approx(0.99, abs=0.01)
    # The fit is a minimum of the NLL.
    for other in (temperature * 0.8, temperature * 1.25):
        assert nll(probabilities, labels, temperature) <= nll(probabilities, labels, other)


def test_an_overconfident_model_is_softened() -> None:
    probabilities, labels = smoothed_answers(accuracy=0.7)
    probabilities = scale(probabilities, 0.2)  # near one-hot, but right only 70% of the time
    assert fit_temperature(probabilities, labels) > 1
