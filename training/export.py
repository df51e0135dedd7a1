"""Export a Keras model, or an ensemble of exported versions, as a new SavedModel version of the repository
(the layout and the atomic write are training.layout's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from app.imaging.line import HEIGHT, SIGNATURE, WIDTH
from training.calibration import FLOOR
from training.layout import write_version

SERVING = "serving_default"

INPUT_NAME = "image"  # float32 [N, 28, 28, 1] in 0..1
OUTPUT_NAME = "probabilities"  # float32 [N, 10]
LINE_INPUT = "line"  # float32 [N, HEIGHT, WIDTH, 1] in 0..1 (app.imaging.line)
LINE_OUTPUT = "frames"  # float32 [N, 80, 11]: CTC log-probabilities (app.imaging.ctc)


def write_saved_model(model: keras.Model, folder: Path, temperature: float = 1.0) -> None:
    """SavedModel whose serving signature takes `image` and returns `probabilities`, temperature-scaled
    (training.calibration) when `temperature` is not 1."""

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(image, training=False)
        if temperature != 1.0:
            probabilities = tf.nn.softmax(tf.math.log(tf.maximum(probabilities, FLOOR)) / temperature)
        return {OUTPUT_NAME: probabilities}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(folder), verbose=False)


class Ensemble(tf.Module):
    """Exported versions answering as one: the normalised geometric mean of their probabilities (the mean of
    their log probabilities, through a softmax). Models of different architectures err on different digits
    and different wrong cuts; where one is sure and the other is not, the mean is less sure."""

    def __init__(self, members: list[Path], line_reader: keras.Model | None = None) -> None:
        super().__init__()
        self.members = [tf.saved_model.load(str(path)) for path in members]
        spec = tf.TensorSpec([None, 28, 28, 1], tf.float32, name=INPUT_NAME)
        self.serve = tf.function(self._serve, input_signature=[spec])
        self.line_reader = line_reader  # training.line_reader's, served beside the ensemble
        if line_reader is not None:
            line = tf.TensorSpec([None, HEIGHT, WIDTH, 1], tf.float32, name=LINE_INPUT)
            self.read_line = tf.function(self._read_line, input_signature=[line])

    def _read_line(self, line: tf.Tensor) -> dict[str, tf.Tensor]:
        assert self.line_reader is not None
        return {LINE_OUTPUT: tf.nn.log_softmax(self.line_reader(line, training=False), axis=-1)}

    def _serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        logs = [
            tf.math.log(tf.maximum(member.signatures[SERVING](**{INPUT_NAME: image})[OUTPUT_NAME], FLOOR))
            for member in self.members
        ]
        return {OUTPUT_NAME: tf.nn.softmax(tf.add_n(logs) / len(logs))}


def write_ensemble(ensemble: Ensemble, folder: Path) -> None:
    """SavedModel of the ensemble with the same serving signature as one model's (`image` -> `probabilities`),
    and `read_line` (`line` -> `frames`) when it has a line reader."""
    signatures = {SERVING: ensemble.serve}
    if ensemble.line_reader is not None:
        signatures[SIGNATURE] = ensemble.read_line
    tf.saved_model.save(ensemble, str(folder), signatures=signatures)


def export_version(
    model: keras.Model | Ensemble,
    repository: str | Path,
    name: str,
    metadata: dict[str, object],
    write_extras: Callable[[Path], object] | None = None,  # what it returns is not used
    temperature: float = 1.0,
) -> Path:
    """The model (or ensemble) as the next version of `name`, with its metadata (and `write_extras` such as the
    report)."""

    def write(folder: Path) -> None:
        if isinstance(model, Ensemble):
            write_ensemble(model, folder)
        else:
            write_saved_model(model, folder, temperature)
        if write_extras is not None:
            write_extras(folder)

    return write_version(
        repository,
        name,
        write,
        {
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "signature": {
                "input": {INPUT_NAME: [None, 28, 28, 1], "dtype": "float32", "range": [0, 1]},
                "output": {OUTPUT_NAME: [None, 10]},
            },
            **metadata,
        },
    )
