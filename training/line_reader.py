"""A line reader for `POST /read`: a small convolutional network that reads a whole number line
(app.imaging.line's image, as segmentation finds it) as CTC frames, so that the reading can weigh the
classifier's cuts against a reading that needs no cuts (app.imaging.reading). It is trained on numbers
written as training.wrong_cuts writes them (MNIST training digits, touching or apart, canvas, scan or photo),
made into lines by the service's own code (app.imaging.segment.number_line).

Convolutions bring the 32x320 line to 80 frames of 64 features (a frame every 4 columns: a digit spans 3-5),
two 1-D convolutions look at the neighbouring frames, and a dense layer gives each frame's 11 scores: class 0
is CTC's blank, digit d is class d + 1 (keras.losses.CTC's convention). A first try with wider convolutions
and a bidirectional GRU was stopped unmeasured: its first epoch took over 8 minutes on 2 CPU cores (this
network's take 4-5)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.errors import TooManyDigits
from app.imaging.line import HEIGHT, WIDTH
from app.imaging.segment import number_line
from training.config import LineReaderConfig
from training.wrong_cuts import _rendered, _written

if TYPE_CHECKING:
    import keras  # imported where the model is built: writing lines needs no TensorFlow

MAX_DIGITS = 12  # digits per training line: 1 to 10 are written, the rest is padding
PAD = -1
LINE_TEST_COUNT, LINE_TEST_SEED = 500, 1  # lines written with test digits, to score a reader by


def line_examples(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int, processes: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """`count` lines (uint8 (n, HEIGHT, WIDTH)) written with `images` (uint8 MNIST) and their digits ((n,
    MAX_DIGITS), PAD after the last). With several `processes`, each writes its share with its own seed."""
    processes = max(1, min(processes, count))
    if processes > 1:
        shares = [count // processes + (i < count % processes) for i in range(processes)]
        jobs = [(images, labels, share, seed * 1000 + i) for i, share in enumerate(shares)]
        with multiprocessing.get_context("spawn").Pool(processes) as pool:  # no fork of a TensorFlow process
            parts = pool.starmap(line_examples, jobs)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    rng = np.random.default_rng(seed)
    x = np.zeros((count, HEIGHT, WIDTH), np.uint8)
    y = np.full((count, MAX_DIGITS), PAD, np.int64)
    done = 0
    while done < count:
        size = int(rng.integers(1, 11))
        picked = rng.choice(len(labels), size=size, replace=False)
        touching = rng.uniform() < 0.5
        # the writer places two or more digits: a lone digit is the first of two
        layers = _written(images[np.r_[picked, picked]], rng, touching)[:1] if size == 1 else None
        layers = _written(images[picked], rng, touching) if layers is None else layers
        try:
            line = number_line(_rendered(layers.max(axis=0), rng))
        except TooManyDigits:  # a noisy photo's specks: not a line the service would read
            continue
        if line is None:
            continue
        x[done] = np.round(line * 255)
        y[done, : len(layers)] = labels[picked][: len(layers)]  # the writer may drop digits past its width
        done += 1
    return x, y


def build_line_reader() -> keras.Model:
    import keras
    from keras import layers

    def block(h: keras.KerasTensor, filters: int, pool: tuple[int, int]) -> keras.KerasTensor:
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = layers.ReLU()(layers.BatchNormalization()(h))
        return layers.MaxPooling2D(pool)(h)

    line = keras.Input((HEIGHT, WIDTH, 1), name="line")  # 0..1
    h = block(line, 16, (2, 2))  # 16 x 160
    h = block(h, 32, (2, 2))  # 8 x 80
    h = block(h, 64, (2, 1))  # 4 x 80
    h = block(h, 64, (4, 1))  # 1 x 80
    h = layers.Reshape((WIDTH // 4, 64))(h)
    for _ in range(2):
        h = layers.Dropout(0.2)(h)
        h = layers.Conv1D(128, 5, padding="same", activation="relu")(h)
    return keras.Model(line, layers.Dense(11, name="frames")(h), name="line_reader")


def load_weights(model: keras.Model, source: Path) -> None:
    """`model` (build_line_reader's) takes the weights of the line reader in `source`: a .keras file
    (`line-reader --out`), or a version folder (`combine --line-reader`), whose SavedModel keeps the reader's
    layers as its checkpoint's `line_reader/_operations/<index of the layer>`."""
    import keras
    import tensorflow as tf

    if source.suffix == ".keras":
        model.set_weights(keras.models.load_model(source, compile=False).get_weights())
        return
    checkpoint = tf.train.load_checkpoint(str(source / "variables" / "variables"))
    for index, layer in enumerate(model.layers):
        names = ["_kernel" if w.path.split("/")[-1] == "kernel" else w.path.split("/")[-1] for w in layer.weights]
        layer.set_weights(
            [checkpoint.get_tensor(f"line_reader/_operations/{index}/{n}/.ATTRIBUTES/VARIABLE_VALUE") for n in names]
        )


def train_line_reader(config: LineReaderConfig, images: np.ndarray, labels: np.ndarray, out: Path) -> Path:
    """Write the lines, train the reader on them (CTC), save it as a .keras file at `out`."""
    import keras

    x, y = line_examples(images, labels, config.count, config.seed, config.processes)
    keras.utils.set_random_seed(config.seed)
    model = build_line_reader()
    if config.init is not None:
        load_weights(model, Path(config.init))
    steps = config.epochs * int(np.ceil(len(x) * 0.98 / config.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate / 2, steps, warmup_target=config.learning_rate, warmup_steps=min(500, steps // 4)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    model.compile(keras.optimizers.Adam(schedule), loss=keras.losses.CTC())
    # the CTC loss takes blank as 0: digits d become d + 1, padding 0
    model.fit(
        x[..., None] / np.float32(255),
        y + 1,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_split=0.02,
        verbose=2,
        callbacks=[keras.callbacks.ModelCheckpoint(out)],  # each epoch's: a long run interrupted keeps its last
    )
    model.save(out)
    return out


def line_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> float:
    """The share of `count` lines written with `images` (MNIST test digits, say) that the reader reads
    exactly, alone (its best path: keras.ops.ctc_decode, greedy)."""
    import keras

    x, y = line_examples(images, labels, count, seed)
    logits = model.predict(x[..., None] / np.float32(255), batch_size=256, verbose=0)
    decoded, _ = keras.ops.ctc_decode(logits, np.full(len(x), logits.shape[1]), strategy="greedy", mask_index=0)
    read = np.asarray(decoded)[0]  # (n, frames): classes, -1 after the text
    right = [
        [int(c) - 1 for c in row if c > 0] == [int(d) for d in truth if d != PAD]
        for row, truth in zip(read, y, strict=True)
    ]
    return float(np.mean(right))
