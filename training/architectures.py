"""The LeNet-5 family, each a small factory, buildable by name; and a per-layer parameter explanation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def lenet5() -> keras.Model:
    """LeNet-5 for 28x28 MNIST with ReLU and max pooling: 61,706 parameters."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(6, 5, padding="same", activation="relu", name="c1"),
            layers.MaxPooling2D(2, name="s2"),
            layers.Conv2D(16, 5, padding="valid", activation="relu", name="c3"),
            layers.MaxPooling2D(2, name="s4"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation="relu", name="f5"),
            layers.Dense(84, activation="relu", name="f6"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="lenet5",
    )


def lenet5_sigmoid() -> keras.Model:
    """The 1998 flavour: sigmoid activations and average pooling, same shape: 61,706 parameters."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(6, 5, padding="same", activation="sigmoid", name="c1"),
            layers.AveragePooling2D(2, name="s2"),
            layers.Conv2D(16, 5, padding="valid", activation="sigmoid", name="c3"),
            layers.AveragePooling2D(2, name="s4"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation="sigmoid", name="f5"),
            layers.Dense(84, activation="sigmoid", name="f6"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="lenet5_sigmoid",
    )


def lenet5_compact() -> keras.Model:
    """LeNet-5 without the 84-unit layer: 51,902 parameters."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(6, 5, padding="same", activation="relu", name="c1"),
            layers.MaxPooling2D(2, name="s2"),
            layers.Conv2D(16, 5, padding="valid", activation="relu", name="c3"),
            layers.MaxPooling2D(2, name="s4"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation="relu", name="f5"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="lenet5_compact",
    )


def lenet5_wide() -> keras.Model:
    """Three 'same' convolutions (6, 16, 32) and a 200-unit layer: 331,214 parameters."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(6, 5, padding="same", activation="relu", name="c1"),
            layers.MaxPooling2D(2, name="s2"),
            layers.Conv2D(16, 5, padding="same", activation="relu", name="c3"),
            layers.MaxPooling2D(2, name="s4"),
            layers.Conv2D(32, 5, padding="same", activation="relu", name="c5"),
            layers.Flatten(name="flatten"),
            layers.Dense(200, activation="relu", name="f6"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="lenet5_wide",
    )


def cnn_dropout() -> keras.Model:
    """The TensorFlow 'deep MNIST' CNN: 32 and 64 filters, 1024 units, dropout 0.5: 3,274,634 parameters."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(1024, activation="relu", name="fc1"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="cnn_dropout",
    )


def _conv_bn(filters: int, name: str) -> list[layers.Layer]:
    # No bias before batch normalisation: its beta does that job.
    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name),
        layers.BatchNormalization(name=f"{name}_bn"),
        layers.Activation("relu", name=f"{name}_relu"),
    ]


def lenet5_plus() -> keras.Model:
    """Our stronger CNN in the LeNet spirit: two stages of stacked 3x3 convolutions with batch
    normalisation, pooling, dropout, one hidden dense layer. Meant to be trained with augmentation.
    'same' padding keeps the strokes that touch the border; dropout stays light because augmentation
    already regularises (a first version with 'valid' padding and heavier dropout underfit: 99.47%)."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            *_conv_bn(32, "conv1a"),  # 28x28
            *_conv_bn(32, "conv1b"),
            layers.MaxPooling2D(2, name="pool1"),  # 14x14
            layers.Dropout(0.1, name="drop1"),
            *_conv_bn(64, "conv2a"),
            *_conv_bn(64, "conv2b"),
            layers.MaxPooling2D(2, name="pool2"),  # 7x7
            layers.Dropout(0.2, name="drop2"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, use_bias=False, name="fc1"),
            layers.BatchNormalization(name="fc1_bn"),
            layers.Activation("relu", name="fc1_relu"),
            layers.Dropout(0.3, name="drop3"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="output"),
        ],
        name="lenet5_plus",
    )


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "lenet5": lenet5,
    "lenet5-sigmoid": lenet5_sigmoid,
    "lenet5-compact": lenet5_compact,
    "lenet5-wide": lenet5_wide,
    "cnn-dropout": cnn_dropout,
    "lenet5-plus": lenet5_plus,
}


def build_model(arch: str) -> keras.Model:
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    return factory()


@dataclass(frozen=True)
class LayerParams:
    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    formula: str
    params: int


def explain_parameters(model: keras.Model) -> list[LayerParams]:
    """Per layer, the formula behind its parameter count; the counts sum to model.count_params()."""
    rows = []
    for layer in model.layers:
        rows.append(
            LayerParams(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=tuple(layer.output.shape),
                formula=_formula(layer),
                params=layer.count_params(),
            )
        )
    return rows


def _formula(layer: layers.Layer) -> str:
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        channels = layer.input.shape[-1]
        weights = f"{kh}x{kw}x{channels} weights"
        if layer.use_bias:
            return f"{layer.filters} filters x ({weights} + 1 bias) = {layer.count_params():,}"
        return f"{layer.filters} filters x {weights}, no bias (batch norm follows) = {layer.count_params():,}"
    if isinstance(layer, layers.Dense):
        inputs = layer.input.shape[-1]
        if layer.use_bias:
            return f"{inputs} inputs x {layer.units} + {layer.units} biases = {layer.count_params():,}"
        return f"{inputs} inputs x {layer.units}, no bias (batch norm follows) = {layer.count_params():,}"
    if isinstance(layer, layers.BatchNormalization):
        channels = layer.input.shape[-1]
        return (
            f"{channels} channels x 4 (gamma, beta trained; moving mean, variance not trained) "
            f"= {layer.count_params():,}"
        )
    if isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
        return "pooling has no weights = 0"
    if isinstance(layer, layers.Flatten):
        shape = "x".join(str(d) for d in layer.input.shape[1:])
        return f"reshapes {shape} into one vector, no weights = 0"
    return "no weights = 0"


def format_explanation(model: keras.Model) -> str:
    rows = explain_parameters(model)
    width = max(len(r.name) for r in rows)
    lines = [f"Parameters of {model.name}, layer by layer:"]
    for row in rows:
        shape = "x".join("N" if d is None else str(d) for d in row.output_shape)
        lines.append(f"  {row.name:<{width}}  {row.kind:<20} -> {shape:<10}  {row.formula}")
    total = sum(r.params for r in rows)
    lines.append(f"  total: {total:,} parameters")
    return "\n".join(lines)
