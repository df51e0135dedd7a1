"""Export a Keras model as a new SavedModel version of the repository (the layout and the atomic write are
training.layout's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from training.calibration import FLOOR
from training.layout import write_version

INPUT_NAME = "image"  # float32 [N, 28, 28, 1] in 0..1
OUTPUT_NAME = "probabilities"  # float32 [N, 10]


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


def export_version(
    model: keras.Model,
    repository: str | Path,
    name: str,
    metadata: dict[str, object],
    write_extras: Callable[[Path], object] | None = None,  # what it returns is not used
    temperature: float = 1.0,
) -> Path:
    """The model as the next version of `name`, with its metadata (and `write_extras` such as the report)."""

    def write(folder: Path) -> None:
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
