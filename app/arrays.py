"""JSON arrays and tensors that are already MNIST-like (white on black, 28x28): validate them and
bring them to float32 0..1. Images that need decoding and centring go through app.imaging."""

from __future__ import annotations

import numbers

import numpy as np

from app.errors import BadArray
from app.imaging.ink import MIN_CONTRAST

SIDE = 28
_PLAIN_NUMBERS = (int, float)


def preprocess_array(instance: object) -> np.ndarray:
    """A JSON instance (28x28, 28x28x1 or flat 784 numbers) or numpy array as (28, 28) float32 in 0..1.

    Values above 1 anywhere mean the 0..255 scale; otherwise they are read as 0..1 (JSON writes a
    float 1.0 as 1, so integers alone cannot tell the scales apart)."""
    if isinstance(instance, np.ndarray):
        if instance.dtype.kind == "O":
            instance = instance.tolist()
        elif instance.dtype.kind not in "iuf":
            raise BadArray(f"expected numbers, got an array of {instance.dtype}")
        else:
            return _checked(np.asarray(instance, np.float64))
    shape = _list_shape(instance)
    if shape not in ((SIDE * SIDE,), (SIDE, SIDE), (SIDE, SIDE, 1)):
        raise BadArray(f"expected 28x28, 28x28x1 or 784 numbers, got shape {_shape_text(shape)}")
    flat: list[object] = []
    _flatten(instance, shape, flat)
    try:
        values = np.array(flat, np.float64)
    except OverflowError as exc:
        raise BadArray("pixel values must be between 0 and 255") from exc
    return _checked(values.reshape(shape))


def _list_shape(instance: object) -> tuple[int, ...]:
    """Lengths along the first element of each level; stops past 4 levels, so no deep recursion."""
    shape: list[int] = []
    level = instance
    while isinstance(level, (list, tuple)) and len(shape) <= 3:
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    if not shape:
        raise BadArray(f"expected a list of numbers, got {type(instance).__name__}")
    return tuple(shape)


def _flatten(level: object, shape: tuple[int, ...], out: list[object], path: str = "") -> None:
    """Collect the leaves, checking every row has the same length; depth is bounded by `shape`."""
    if not isinstance(level, (list, tuple)) or len(level) != shape[0]:
        found = f"{len(level)} items" if isinstance(level, (list, tuple)) else type(level).__name__
        raise BadArray(f"ragged instance: {path or 'top level'} should hold {shape[0]} items, found {found}")
    if len(shape) > 1:
        for index, item in enumerate(level):
            _flatten(item, shape[1:], out, f"{path}[{index}]")
        return
    if not all(type(value) in _PLAIN_NUMBERS for value in level):  # the fast check: what JSON gives
        for index, value in enumerate(level):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise BadArray(f"pixel {path}[{index}] is {type(value).__name__}, expected a number")
    out.extend(level)


def _checked(values: np.ndarray) -> np.ndarray:
    if values.shape not in ((SIDE * SIDE,), (SIDE, SIDE), (SIDE, SIDE, 1)):
        raise BadArray(f"expected 28x28, 28x28x1 or 784 numbers, got shape {_shape_text(values.shape)}")
    image: np.ndarray = normalise_batch(values.reshape(1, SIDE, SIDE))[0]
    return image


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape) or "scalar"


def normalise_batch(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """A tensor of N images (N, 28, 28) as float32 in 0..1, by the same rules as `preprocess_array`,
    per image: finite, within 0..255, and divided by 255 when any value is above 1 (or by `scale`)."""
    values = np.asarray(values, np.float64)
    if not np.isfinite(values).all():
        raise BadArray("pixel values must be finite numbers (no NaN or Infinity)")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise BadArray("pixel values must be between 0 and 255 (or 0 and 1)")
    if scale is not None:
        return (values / scale).astype(np.float32)
    peaks = values.reshape(len(values), -1).max(axis=1)
    divisors = np.where(peaks > 1, 255.0, 1.0)[:, None, None]
    return (values / divisors).astype(np.float32)


def batch_from_lists(instances: list[object]) -> np.ndarray | None:
    """The fast path for many list instances: one numpy conversion for the whole batch.

    Returns None when it cannot vouch for the input (ragged, mixed types, odd shapes), and the caller
    then checks instance by instance, which also names the culprit. Callers must rule out JSON
    booleans first: numpy would quietly read them as 0 and 1."""
    try:
        values = np.array(instances)
    except (ValueError, TypeError, OverflowError):
        return None
    if values.dtype.kind not in "iuf" or values.shape[1:] not in ((SIDE * SIDE,), (SIDE, SIDE), (SIDE, SIDE, 1)):
        return None
    return normalise_batch(values.reshape(len(values), SIDE, SIDE))


def no_ink(batch: np.ndarray) -> np.ndarray:
    """For each image of a normalised batch (N, 28, 28), whether nothing is drawn: no pixel stands out from the
    others by MIN_CONTRAST (all 0, all ink, or one value and specks fainter than ~20/255), as an image file whose
    ink does not stand out from its paper by as much is `no_ink`."""
    flat = batch.reshape(len(batch), -1)
    blank: np.ndarray = flat.max(axis=1) - flat.min(axis=1) < MIN_CONTRAST
    return blank
