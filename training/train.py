"""Keras fit with a seeded validation split, best-epoch checkpoint, resume, and a readable log."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from training.architectures import build_model
from training.config import TrainConfig
from training.data import Mnist, make_dataset, split_validation
from training.progress import Logs
from training.wrong_cuts import NOT_A_DIGIT, wrong_cuts

if TYPE_CHECKING:
    import tensorflow as tf

HISTORY_FILE = "history.csv"
BEST_WEIGHTS = "best.weights.h5"
RUN_FILE = "run.json"  # the options of the run in a work dir (_same_run)


@dataclass
class TrainResult:
    model: keras.Model  # weights of the best epoch by validation accuracy (config.keep "last": the final epoch)
    history: dict[str, list[float]]  # per epoch, across resumes: loss, accuracy, val_*, learning_rate, epoch_seconds
    best_epoch: int  # 1-based: the epoch whose weights `model` holds
    wall_seconds: float
    train_size: int
    val_size: int

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))


class EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]  # keras has no types: its classes are Any
    """Adds `epoch_seconds` to each epoch's logs (listed first so the CSV log records it)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps_per_epoch)
    # Keras applies weight_decay decoupled from the gradient (AdamW's rule) in every optimizer; None: off.
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=decay)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, weight_decay=decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose adam, sgd or rmsprop")


class SmoothedSparseCrossentropy(keras.losses.Loss):  # type: ignore[misc]  # keras has no types
    """Categorical cross-entropy with label smoothing for integer labels (keras' sparse loss has no smoothing).
    A NOT_A_DIGIT label (a wrong cut, training.wrong_cuts) targets every class equally."""

    def __init__(self, label_smoothing: float, name: str = "smoothed_sparse_crossentropy", **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        classes = keras.ops.shape(y_pred)[-1]
        targets = keras.ops.one_hot(keras.ops.maximum(labels, 0), classes, dtype=y_pred.dtype)
        uniform = keras.ops.ones_like(targets) / keras.ops.cast(classes, y_pred.dtype)
        targets = keras.ops.where(keras.ops.expand_dims(labels == NOT_A_DIGIT, -1), uniform, targets)
        losses: tf.Tensor = keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.label_smoothing)
        return losses

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def make_loss(config: TrainConfig) -> str | keras.losses.Loss:
    if config.label_smoothing or config.wrong_cuts:
        return SmoothedSparseCrossentropy(config.label_smoothing)
    return "sparse_categorical_crossentropy"


class DigitAccuracy(keras.metrics.Metric):  # type: ignore[misc]  # keras has no types
    """Sparse categorical accuracy over the images that are digits (wrong cuts have no right answer)."""

    def __init__(self, name: str = "accuracy", **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)
        self.right = self.add_variable(shape=(), initializer="zeros", name="right")
        self.seen = self.add_variable(shape=(), initializer="zeros", name="seen")

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        digit = keras.ops.cast(labels != NOT_A_DIGIT, "float32")
        hit = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1) == labels, "float32") * digit
        self.right.assign_add(keras.ops.sum(hit))
        self.seen.assign_add(keras.ops.sum(digit))

    def result(self) -> tf.Tensor:
        share: tf.Tensor = self.right / keras.ops.maximum(self.seen, 1.0)
        return share

    def reset_state(self) -> None:
        self.right.assign(0.0)
        self.seen.assign(0.0)


def choose_strategy(devices: list[str] | None = None) -> tf.distribute.Strategy:
    """MirroredStrategy (data-parallel, one replica per device) when several GPUs are visible, else
    TensorFlow's default. `devices` overrides the choice (tests mirror over logical CPUs)."""
    import tensorflow as tf

    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def train(
    config: TrainConfig,
    mnist: Mnist,
    callbacks: list[keras.callbacks.Callback] | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Train `config.arch`; an interrupted run with the same work_dir resumes at its last finished epoch."""
    if config.lr_schedule not in ("plateau", "cosine", "constant"):
        raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}; choose plateau, cosine or constant")
    if config.keep not in ("best", "last"):
        raise ValueError(f"unknown keep {config.keep!r}; choose best or last")
    keras.utils.set_random_seed(config.seed)
    (x_train, y_train), (x_val, y_val) = split_validation(
        mnist, config.validation_split, config.seed, config.train_limit
    )
    if config.wrong_cuts:  # cuts of numbers written with the training digits only, never the validation's
        x_cuts, y_cuts = wrong_cuts(
            x_train, y_train, config.wrong_cuts, config.seed, config.threads or os.cpu_count() or 1
        )
        x_train, y_train = np.concatenate([x_train, x_cuts]), np.concatenate([y_train, y_cuts])
    train_ds = make_dataset(
        x_train,
        y_train,
        config.batch_size,
        shuffle=True,
        augment=config.augment,
        seed=config.seed,
        rotation=config.augment_rotation,
        shift=config.augment_shift,
        zoom=config.augment_zoom,
    )
    val_ds = make_dataset(x_val, y_val, 1024) if len(x_val) else None
    monitor = "val_accuracy" if val_ds is not None else "accuracy"

    strategy = strategy or choose_strategy()
    steps = math.ceil(len(x_train) / config.batch_size)
    with strategy.scope():  # variables are mirrored on every device when there are several
        model = build_model(config.arch)
        model.compile(optimizer=make_optimizer(config, steps), loss=make_loss(config), metrics=[DigitAccuracy()])

    work_dir = Path(config.work_dir or Path("runs") / config.model_name)
    work_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = work_dir / "backup"
    history_path = work_dir / HISTORY_FILE
    resuming = backup_dir.exists()
    _same_run(work_dir, config, resuming)
    if not resuming:
        history_path.unlink(missing_ok=True)
    best_so_far = _read_history(history_path).get(monitor, [])

    all_callbacks: list[keras.callbacks.Callback] = [
        EpochTimer(),
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        keras.callbacks.ModelCheckpoint(
            str(work_dir / BEST_WEIGHTS),
            monitor=monitor,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=max(best_so_far) if best_so_far else None,
        ),
        csv_log := keras.callbacks.CSVLogger(str(history_path), append=True),
    ]
    if config.lr_schedule == "plateau":
        all_callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss" if val_ds else "loss", factor=0.5, patience=2, min_lr=1e-5
            )
        )
    if config.early_stopping:
        all_callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=config.early_stopping))
    if config.tensorboard:
        all_callbacks.append(keras.callbacks.TensorBoard(str(work_dir / "tensorboard")))
    all_callbacks.extend(callbacks or [])

    start = time.perf_counter()
    try:
        # shuffle=False: the tf.data pipeline already reshuffles every epoch.
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            callbacks=all_callbacks,
            shuffle=False,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    finally:
        if csv_log.csv_file is not None:  # CSVLogger closes its file only when training ends normally
            csv_log.csv_file.close()
    wall = time.perf_counter() - start

    history = _read_history(history_path)
    scores = history.get(monitor, [])
    if config.keep == "last":  # the model holds the final epoch's weights (also after a resume)
        best_epoch = len(scores)
    else:
        best_epoch = int(np.argmax(scores)) + 1 if scores else 0
        if (work_dir / BEST_WEIGHTS).exists():
            model.load_weights(str(work_dir / BEST_WEIGHTS))
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        wall_seconds=wall,
        train_size=len(x_train),
        val_size=len(x_val),
    )


# The options a run's weights and history depend on: an interrupted run resumes only with the same (more epochs too).
RUN_OPTIONS = (
    "arch", "batch_size", "learning_rate", "optimizer", "augment", "augment_rotation", "augment_shift", "augment_zoom",
    "seed", "validation_split", "train_limit", "lr_schedule", "weight_decay", "label_smoothing", "wrong_cuts", "data",
)  # fmt: skip


def _same_run(work_dir: Path, config: TrainConfig, resuming: bool) -> None:
    """Record the run's options in its work dir (RUN_FILE); ValueError, naming what differs, when an interrupted run
    there would be resumed with others (it resumed silently, past its last epoch, and exported under the new ones)."""
    options = {name: value for name, value in config.to_dict().items() if name in RUN_OPTIONS}
    path = work_dir / RUN_FILE
    if resuming and path.exists():
        recorded = json.loads(path.read_text())
        differ = [
            f"{name} {recorded.get(name)!r}, not {options[name]!r}"
            for name in RUN_OPTIONS
            if recorded.get(name) != options[name]
        ]
        if differ:
            raise ValueError(
                f"{work_dir} holds an interrupted run with other options ({'; '.join(differ)}): run it with those to "
                f"resume it, or start afresh with another --work-dir or after deleting {work_dir / 'backup'}"
            )
        return
    path.write_text(json.dumps(options))


def _read_history(path: Path) -> dict[str, list[float]]:
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # A column with no value in some epoch (Keras' CSVLogger writes NA, e.g. val_* of a run with no validation images)
    # is left out: the history keeps only what every epoch measured.
    keys = {key for row in rows for key in row if key not in ("epoch", None)}
    return {
        key: [float(row[key]) for row in rows]
        for key in sorted(keys)
        if all(row.get(key) not in ("", "NA", None) for row in rows)
    }
