"""Training hyperparameters in one place, and the one environment variable training reads."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

# Buildable architectures (training.architectures builds them; kept here so the service can validate
# names without importing TensorFlow).
ARCHITECTURE_NAMES = ("lenet5", "lenet5-sigmoid", "lenet5-compact", "lenet5-wide", "cnn-dropout", "lenet5-plus")

# In a job dir: JSON-lines progress written by the CLI, read by the service (the last line is
# {"event": "finished", ...}). Here, not in training.pipeline, so the service needs no TensorFlow.
PROGRESS_FILE = "progress.jsonl"

# The only environment variable the training package reads (the service passes it on explicitly).
MNIST_PATH_ENV = "LENET_MNIST_PATH"


def mnist_path_from_env() -> Path | None:
    value = os.environ.get(MNIST_PATH_ENV, "").strip()
    return Path(value) if value else None


@dataclass
class TrainConfig:
    arch: str = "lenet5"
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"  # adam | sgd | rmsprop
    augment: bool = False
    seed: int = 0
    validation_split: float = 0.1
    train_limit: int | None = None  # first N training images only (quick runs)
    early_stopping: int | None = None  # patience in epochs; None disables it
    lr_schedule: str = "plateau"  # plateau | cosine | constant
    data: str | None = None  # path to mnist.npz or an IDX folder; None: env, then download
    repository: str = "models"
    name: str | None = None  # model name in the repository; defaults to arch
    tensorboard: bool = False
    work_dir: str | None = None  # checkpoints and resume state; defaults to runs/<name>
    threads: int | None = None  # TensorFlow threads; None: all cores (the service's jobs use 1)

    @property
    def model_name(self) -> str:
        return self.name or self.arch

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
