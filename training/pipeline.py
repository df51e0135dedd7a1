"""Train, evaluate and export in one go: what `python -m training train` runs."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from training.architectures import explain_parameters
from training.calibration import expected_calibration_error, fit_temperature, scale
from training.config import PROGRESS_FILE, TrainConfig
from training.data import Mnist, load_mnist, split_validation, to_model_input
from training.evaluate import Evaluation, evaluate, format_evaluation, keras_predictor
from training.export import export_version
from training.layout import REPORT_DIR, MetadataError, check_writable, model_dir, read_metadata, version_dirs
from training.progress import ProgressLog, append_event
from training.reports import write_reports
from training.train import TrainResult, train

log = logging.getLogger("training")


def layer_table(model: keras.Model) -> list[dict[str, object]]:
    """Per layer: name, kind, output shape, parameter formula and count (shown to learners)."""
    return [
        {"name": r.name, "kind": r.kind, "output_shape": list(r.output_shape), "formula": r.formula, "params": r.params}
        for r in explain_parameters(model)
    ]


def build_metadata(
    config: TrainConfig, mnist: Mnist, result: TrainResult, evaluation: Evaluation, model: keras.Model
) -> dict[str, object]:
    epoch_seconds = result.history.get("epoch_seconds", [])
    return {
        "architecture": config.arch,
        "parameters": int(model.count_params()),
        "layers": layer_table(model),
        "training_config": config.to_dict(),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        **evaluation.to_dict(),
        "train_size": result.train_size,
        "validation_size": result.val_size,
        "test_size": len(mnist.y_test),
        "data_source": mnist.source,
        "training_data_sha256": mnist.sha256(),
        "training_seconds": round(float(np.sum(epoch_seconds)) if epoch_seconds else result.wall_seconds, 1),
        "mean_epoch_seconds": round(float(np.mean(epoch_seconds)), 2) if epoch_seconds else None,
        "history": {k: [round(v, 6) for v in vs] for k, vs in result.history.items()},
    }


@dataclass(frozen=True)
class Outcome:
    evaluation: Evaluation
    state: str  # promoted (a new version in the repository) | rejected | exported (candidate only) | evaluated
    path: Path | None
    version: int | None
    reason: str = ""
    gate_accuracy: float | None = None  # what promote=auto required (None: no gate applied)


def promotion_gate(config: TrainConfig) -> float | None:
    """The test accuracy promote=auto needs: `gate_accuracy` if set, else the newest version's recorded
    accuracy minus `gate_margin` (the versions that record none are passed over); None with no version."""
    if config.gate_accuracy is not None:
        return config.gate_accuracy
    versions = version_dirs(config.repository, config.model_name)
    for version in sorted(versions, reverse=True):
        try:
            accuracy = read_metadata(versions[version]).get("test_accuracy")
        except MetadataError:
            continue
        if isinstance(accuracy, (int, float)):
            return round(float(accuracy) - config.gate_margin, 6)
    return None


def train_evaluate_export(
    config: TrainConfig, mnist: Mnist | None = None, callbacks: list[keras.callbacks.Callback] | None = None
) -> Outcome:
    """Train, evaluate, then export as `config.promote` says. `force` writes a new version into the
    repository; `auto` does so only when the test accuracy reaches `promotion_gate`, else keeps the
    candidate marked rejected; `never` keeps the candidate only. Candidates go to the job dir (default:
    the work dir)."""
    job_dir = Path(config.job_dir) if config.job_dir else None
    progress = job_dir / PROGRESS_FILE if job_dir else None
    # Every folder the run writes, checked before minutes of training rather than at the export.
    folders = [Path(config.work_dir or Path("runs") / config.model_name), *([job_dir] if job_dir else [])]
    if config.export and config.promote != "never":
        folders.append(model_dir(config.repository, config.model_name))
    for folder in folders:
        check_writable(folder)
    mnist = mnist or load_mnist(config.data)
    log.info("data: %s (%d train, %d test)", mnist.source, len(mnist.y_train), len(mnist.y_test))
    if progress is not None:
        limit = config.train_limit or len(mnist.y_train)
        steps = math.ceil(limit * (1 - config.validation_split) / config.batch_size)
        callbacks = [*(callbacks or []), ProgressLog(progress, config.epochs, steps)]
    result = train(config, mnist, callbacks=callbacks)
    temperature = calibrate(config, mnist, result.model)
    predictor = keras_predictor(result.model)
    evaluation = evaluate(
        predictor if temperature == 1.0 else (lambda x: scale(predictor(x), temperature)), mnist.x_test, mnist.y_test
    )
    log.info("best epoch %d of %d\n%s", result.best_epoch, result.epochs_run, format_evaluation(evaluation))
    append_event(progress, "evaluated", test_accuracy=evaluation.accuracy, test_loss=evaluation.loss)
    if not config.export:
        return _finish(progress, Outcome(evaluation, "evaluated", None, None))
    metadata = {**build_metadata(config, mnist, result, evaluation, result.model), "temperature": temperature}

    def reports(folder: Path) -> None:
        write_reports(folder / REPORT_DIR, evaluation, mnist.x_test, mnist.y_test, result.history)

    gate = promotion_gate(config) if config.promote == "auto" else None
    if config.promote == "force" or (config.promote == "auto" and (gate is None or evaluation.accuracy >= gate)):
        target = export_version(result.model, config.repository, config.model_name, metadata, reports, temperature)
        log.info("exported %s", target)
        return _finish(progress, Outcome(evaluation, "promoted", target, int(target.name), gate_accuracy=gate))
    reason = (
        "promote=never: exported as a candidate only"
        if config.promote == "never"
        else f"test accuracy {evaluation.accuracy:.4f} is below the gate {gate:.4f}"
    )
    candidates = Path(job_dir or config.work_dir or Path("runs") / config.model_name)
    target = export_version(
        result.model,
        candidates,
        "candidate",
        {**metadata, "rejected": config.promote == "auto", "reason": reason},
        reports,
        temperature,
    )
    log.info("not promoted (%s); candidate kept at %s", reason, target)
    state = "rejected" if config.promote == "auto" else "exported"
    return _finish(progress, Outcome(evaluation, state, target, None, reason, gate))


def calibrate(config: TrainConfig, mnist: Mnist, model: keras.Model) -> float:
    """The temperature that makes a label-smoothed model's confidence match its accuracy on the
    validation split (1.0, no scaling, for a model trained on hard labels)."""
    if config.label_smoothing <= 0:
        return 1.0
    _, (x_val, y_val) = split_validation(mnist, config.validation_split, config.seed, config.train_limit)
    probabilities = np.asarray(keras_predictor(model)(to_model_input(x_val)), np.float64)
    temperature = fit_temperature(probabilities, y_val)
    log.info(
        "calibration: temperature %.4f; validation ECE %.4f -> %.4f",
        temperature,
        expected_calibration_error(probabilities, y_val),
        expected_calibration_error(scale(probabilities, temperature), y_val),
    )
    return temperature


def _finish(progress: Path | None, outcome: Outcome) -> Outcome:
    append_event(
        progress,
        "finished",
        state=outcome.state,
        version=outcome.version,
        path=str(outcome.path) if outcome.path else None,
        reason=outcome.reason,
        test_accuracy=outcome.evaluation.accuracy,
        gate_accuracy=outcome.gate_accuracy,
    )
    return outcome
