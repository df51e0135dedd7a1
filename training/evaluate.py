"""Score a model (in memory or an exported SavedModel) on the MNIST test set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.data import to_model_input

if TYPE_CHECKING:
    import keras  # for annotations only: scoring an exported SavedModel needs no keras

PredictFn = Callable[[np.ndarray], np.ndarray]  # float32 (N, 28, 28, 1) in 0..1 -> (N, 10) probabilities


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    per_class_accuracy: list[float]
    confusion: np.ndarray  # rows: true digit, columns: predicted digit
    probabilities: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        digits: np.ndarray = self.probabilities.argmax(axis=1)
        return digits

    def to_dict(self) -> dict[str, object]:
        return {
            "test_accuracy": round(self.accuracy, 6),
            "test_loss": round(self.loss, 6),
            "per_class_accuracy": [round(a, 6) for a in self.per_class_accuracy],
            "confusion_matrix": self.confusion.tolist(),
        }


def saved_model_predictor(path: str | Path, batch_size: int = 1024) -> PredictFn:
    """Load an exported version and return its serving function, batched."""
    import tensorflow as tf

    return serving_predictor(tf.saved_model.load(str(path)).signatures["serving_default"], batch_size)


def serving_predictor(serve: Callable[..., dict[str, object]], batch_size: int = 1024) -> PredictFn:
    """A serving function (`image` in, `probabilities` out: an exported version's signature, or an unsaved
    training.export.Ensemble's) called in batches."""
    import tensorflow as tf

    def predict(x: np.ndarray) -> np.ndarray:
        outputs = [
            np.asarray(serve(image=tf.constant(x[i : i + batch_size]))["probabilities"])
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros((0, 10), np.float32)

    return predict


def keras_predictor(model: keras.Model, batch_size: int = 1024) -> PredictFn:
    return lambda x: model.predict(x, batch_size=batch_size, verbose=0)


def evaluate(predict: PredictFn, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    probabilities = np.asarray(predict(to_model_input(images)), dtype=np.float64)
    labels = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = [float(confusion[d, d] / totals[d]) if totals[d] else float("nan") for d in range(10)]
    return Evaluation(
        accuracy=float((predicted == labels).mean()),
        loss=float(-np.log(picked).mean()),
        per_class_accuracy=per_class,
        confusion=confusion,
        probabilities=probabilities.astype(np.float32),
    )


def format_evaluation(result: Evaluation) -> str:
    lines = [
        (
            f"test accuracy {result.accuracy:.4%}  loss {result.loss:.4f}  "
            f"errors {int(result.confusion.sum() - np.trace(result.confusion))} of {int(result.confusion.sum())}"
        ),
        "per-class accuracy: " + "  ".join(f"{d}:{a:.2%}" for d, a in enumerate(result.per_class_accuracy)),
        "confusion matrix (rows true, columns predicted):",
        "      " + " ".join(f"{d:>5}" for d in range(10)),
    ]
    lines += [f"  {d:>2}  " + " ".join(f"{n:>5}" for n in row) for d, row in enumerate(result.confusion)]
    return "\n".join(lines)
