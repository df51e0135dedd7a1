"""Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks"): one number T,
fitted on the validation split, such that softmax(log p / T) is as confident as the model is right.
Label smoothing trains a model to answer about 0.9 however sure it is; scaling undoes that without
changing which digit any answer names. numpy only: the exported signature applies it with TensorFlow."""

from __future__ import annotations

import itertools
import math

import numpy as np

FLOOR = 1e-12  # log(0) guard: softmax outputs underflow to 0 for far-off classes
BOUNDS = (0.02, 5.0)  # temperatures searched


def _log_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(log p / T), row by row, without underflow."""
    logits = np.log(np.maximum(probabilities.astype(np.float64), FLOOR)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    logged: np.ndarray = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logged


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row."""
    scaled: np.ndarray = np.exp(_log_scaled(probabilities, temperature))
    return scaled


def nll(probabilities: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the labels after scaling."""
    return float(-_log_scaled(probabilities, temperature)[np.arange(len(labels)), labels].mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray, steps: int = 60) -> float:
    """The temperature with the least NLL: golden-section search on log T (the NLL is convex in 1/T)."""
    low, high = math.log(BOUNDS[0]), math.log(BOUNDS[1])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(steps):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(probabilities, labels, math.exp(a)) <= nll(probabilities, labels, math.exp(b)):
            high = b
        else:
            low = a
    return round(math.exp((low + high) / 2), 4)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """How far confidence is from accuracy, averaged over confidence bins weighted by their size."""
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += float(inside.mean()) * abs(
                float((predicted[inside] == labels[inside]).mean()) - float(confidence[inside].mean())
            )
    return error
