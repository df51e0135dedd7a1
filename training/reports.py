"""PNG figures for a trained model: learning curves, confusion matrix, sample and error grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from training.evaluate import Evaluation

FIGURES = ("learning_curves.png", "confusion_matrix.png", "samples.png", "misclassified.png")


def write_reports(
    folder: Path, evaluation: Evaluation, images: np.ndarray, labels: np.ndarray, history: dict[str, list[float]] | None
) -> list[Path]:
    """Draw every figure that the inputs allow into `folder`; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if history and history.get("loss"):
        written.append(learning_curves(history, folder / "learning_curves.png"))
    written.append(confusion_matrix(evaluation.confusion, folder / "confusion_matrix.png"))
    written.append(
        digit_grid(
            images[:25],
            labels[:25],
            evaluation.predicted[:25],
            folder / "samples.png",
            "First 25 test digits: predicted (true)",
        )
    )
    wrong = np.flatnonzero(evaluation.predicted != labels)[:25]
    written.append(
        digit_grid(
            images[wrong],
            labels[wrong],
            evaluation.predicted[wrong],
            folder / "misclassified.png",
            f"Misclassified: {len(wrong)} shown, predicted (true)",
        )
    )
    return written


def learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(epochs, history.get(metric, []), "o-", label="train")
        if history.get(f"val_{metric}"):
            ax.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_matrix(confusion: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax)
    threshold = confusion.max() / 2
    for (row, col), count in np.ndenumerate(confusion):
        ax.text(
            col, row, str(count), ha="center", va="center", fontsize=8, color="white" if count > threshold else "black"
        )
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title("Confusion matrix (test set)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def digit_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: Path, title: str) -> Path:
    fig, axes = plt.subplots(5, 5, figsize=(6, 6.6))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray")
            ok = predicted[i] == labels[i]
            ax.set_title(f"{predicted[i]} ({labels[i]})", fontsize=9, color="green" if ok else "red")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
