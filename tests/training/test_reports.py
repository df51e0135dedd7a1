from __future__ import annotations

import numpy as np
from PIL import Image

from training.evaluate import evaluate
from training.reports import FIGURES, write_reports


def test_reports_draw_every_figure(tmp_path, small_mnist):
    # A "model" that is right except on every seventh digit, so there are errors to draw.
    labels = small_mnist.y_test

    def predict(x):
        wrong = (labels + (np.arange(len(labels)) % 7 == 0)) % 10
        return np.eye(10, dtype=np.float32)[wrong]

    result = evaluate(predict, small_mnist.x_test, labels)
    assert 0.85 < result.accuracy < 0.86
    history = {"loss": [0.5, 0.3], "val_loss": [0.4, 0.35], "accuracy": [0.8, 0.9], "val_accuracy": [0.85, 0.88]}
    written = write_reports(tmp_path / "report", result, small_mnist.x_test, labels, history)
    assert sorted(p.name for p in written) == sorted(FIGURES)
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 500


def test_evaluation_counts(small_mnist):
    labels = small_mnist.y_test
    result = evaluate(lambda x: np.eye(10, dtype=np.float32)[labels], small_mnist.x_test, labels)
    assert result.accuracy == 1.0
    assert result.confusion.trace() == len(labels)
    assert result.per_class_accuracy == [1.0] * 10
