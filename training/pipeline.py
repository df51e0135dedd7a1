"""Train, evaluate and export in one go: what `python -m training train` runs."""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from training.config import TrainConfig
from training.data import Mnist, load_mnist
from training.evaluate import Evaluation, evaluate, format_evaluation, keras_predictor
from training.export import REPORT_DIR, export_version
from training.reports import write_reports
from training.train import TrainResult, train

log = logging.getLogger("training")


def build_metadata(config: TrainConfig, mnist: Mnist, result: TrainResult, evaluation: Evaluation,
                   model: keras.Model) -> dict[str, object]:
    epoch_seconds = result.history.get("epoch_seconds", [])
    return {
        "architecture": config.arch,
        "parameters": int(model.count_params()),
        "training_config": config.to_dict(),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        **evaluation.to_dict(),
        "train_size": result.train_size,
        "validation_size": result.val_size,
        "test_size": int(len(mnist.y_test)),
        "data_source": mnist.source,
        "training_data_sha256": mnist.sha256(),
        "training_seconds": round(float(np.sum(epoch_seconds)) if epoch_seconds else result.wall_seconds, 1),
        "mean_epoch_seconds": round(float(np.mean(epoch_seconds)), 2) if epoch_seconds else None,
        "history": {k: [round(v, 6) for v in vs] for k, vs in result.history.items()},
    }


def train_evaluate_export(config: TrainConfig, mnist: Mnist | None = None, export: bool = True,
                          callbacks: list[keras.callbacks.Callback] | None = None) -> tuple[Evaluation, Path | None]:
    mnist = mnist or load_mnist(config.data)
    log.info("data: %s (%d train, %d test)", mnist.source, len(mnist.y_train), len(mnist.y_test))
    result = train(config, mnist, callbacks=callbacks)
    evaluation = evaluate(keras_predictor(result.model), mnist.x_test, mnist.y_test)
    log.info("best epoch %d of %d\n%s", result.best_epoch, result.epochs_run, format_evaluation(evaluation))
    if not export:
        return evaluation, None
    metadata = build_metadata(config, mnist, result, evaluation, result.model)

    def reports(folder: Path) -> None:
        write_reports(folder / REPORT_DIR, evaluation, mnist.x_test, mnist.y_test, result.history)

    target = export_version(result.model, config.repository, config.model_name, metadata, reports)
    log.info("exported %s", target)
    return evaluation, target
