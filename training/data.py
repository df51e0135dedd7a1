"""Load MNIST from an .npz, the four IDX files, or keras' download; build tf.data pipelines."""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.config import MNIST_PATH_ENV, mnist_path_from_env

if TYPE_CHECKING:
    import tensorflow as tf  # imported where used: loading MNIST needs no TensorFlow

# Images and labels, aligned.
Examples = tuple[np.ndarray, np.ndarray]

ZIP_MAGIC = b"PK\x03\x04"  # how every .npz (a zip archive) begins
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_UBYTE = 0x08


class DataError(ValueError):
    """The data set is missing, unreadable or not MNIST-shaped; the message names the file."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # (N, 28, 28) uint8, white digit on black
    y_train: np.ndarray  # (N,) uint8 in 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def sha256(self) -> str:
        """Fingerprint of the training arrays, recorded in each exported version's metadata."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def load_mnist(path: str | Path | None = None) -> Mnist:
    """Load MNIST from `path`, else from $LENET_MNIST_PATH, else through keras' download and cache."""
    chosen = Path(path) if path is not None else mnist_path_from_env()
    if chosen is None:
        return download_mnist()
    if not chosen.exists():
        raise DataError(f"{chosen}: no such file or folder (expected mnist.npz or a folder of IDX files)")
    if chosen.is_dir():
        arrays = _load_idx_folder(chosen)
    else:
        arrays = _load_npz(chosen)
    return validate(arrays, source=str(chosen))


OFFLINE = f"set {MNIST_PATH_ENV} or pass --data PATH to mnist.npz or a folder of the four IDX files"


def download_mnist(offline: str = OFFLINE) -> Mnist:
    """keras' own download (cached in ~/.keras/datasets), checked against keras' recorded hash; `offline` says what to
    do instead when it fails (as the command that asked can be told)."""
    import keras  # deferred: importing keras pulls in TensorFlow

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(f"could not download MNIST through keras ({exc}); offline, {offline}") from exc
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return validate(arrays, source="keras.datasets.mnist")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as handle:
        if handle.read(4) != ZIP_MAGIC:  # np.load would try it as one .npy array, or advise allow_pickle
            raise DataError(f"{path}: not an .npz file (a zip archive of arrays, as np.savez writes)")
    try:
        # Open the file ourselves: np.load leaks its handle when the zip is corrupt.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
            missing = [key for key in IDX_NAMES if key not in npz.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; found {sorted(npz.files)}")
            return {key: npz[key] for key in IDX_NAMES}
    except DataError:
        raise
    except Exception as exc:  # zipfile, pickle and OS errors: all mean "not a readable npz"
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc


def _load_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in IDX_NAMES.items():
        candidates = [folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            npz = next(iter(sorted(folder.glob("*.npz"))), None)
            held = f"; it holds {npz.name}: pass the file" if npz else ""
            raise DataError(f"{folder}: missing {stem} (or {stem}.gz){held}")
        arrays[key] = read_idx(found)
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) of unsigned bytes."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != _IDX_UBYTE:
        raise DataError(f"{path}: IDX data type {raw[2]:#04x}, expected unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says {expected} bytes of data for shape {shape}, file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def validate(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    """Check shapes, dtypes, label range and split sizes; raise DataError naming the problem."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if y.ndim != 1:
            raise DataError(f"{source}: y_{split} has shape {y.shape}, expected (N,)")
        if len(x) != len(y):
            raise DataError(f"{source}: {len(x)} images but {len(y)} labels in the {split} split")
        if len(x) == 0:
            raise DataError(f"{source}: the {split} split is empty")
        if x.dtype != np.uint8:
            x = _pixels(x, f"{source}: x_{split}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{source}: y_{split} is {y.dtype}, expected integer labels")
        if y.min() < 0 or y.max() > 9:
            bad = int(np.flatnonzero((y < 0) | (y > 9))[0])
            raise DataError(f"{source}: y_{split}[{bad}] = {int(y[bad])}, labels must be 0..9")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y.astype(np.uint8)
    return Mnist(source=source, **{key: arrays[key] for key in IDX_NAMES})


def _pixels(x: np.ndarray, named: str) -> np.ndarray:
    """Images stored as another number type, as uint8 pixels: floats within 0..1 as a brightness (times 255), whole
    numbers 0..255 as they are; anything else refused (cast as it was, 0..1 floats became black images)."""
    if not np.issubdtype(x.dtype, np.number) or x.min() < 0 or x.max() > 255:
        raise DataError(f"{named} is {x.dtype} outside 0..255, expected uint8 pixels")
    if np.issubdtype(x.dtype, np.floating) and x.max() <= 1:
        return np.rint(x * 255.0).astype(np.uint8)
    if np.array_equal(x, np.rint(x)):
        return x.astype(np.uint8)
    raise DataError(f"{named} holds fractions above 1: expected uint8 pixels (0..255) or a brightness 0..1")


def save_mnist(mnist: Mnist, target: str | Path) -> Path:
    """Write `mnist` as an .npz in keras' layout (the file every loader here reads), atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as out:  # an open file: np.savez would append .npz to a bare name
        np.savez_compressed(out, **{key: getattr(mnist, key) for key in IDX_NAMES})
    partial.replace(target)
    return target


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) to float32 (N, 28, 28, 1) in 0..1: what the exported signature takes."""
    return (images.astype(np.float32) / 255.0)[..., None]


def split_validation(mnist: Mnist, fraction: float, seed: int, limit: int | None = None) -> tuple[Examples, Examples]:
    """Seeded shuffle of the training set into (x_train, y_train), (x_val, y_val)."""
    x, y = mnist.x_train, mnist.y_train
    if limit is not None:
        x, y = x[:limit], y[:limit]
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = round(len(x) * fraction)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
    rotation: float = 10.0,
    shift: float = 0.1,
    zoom: float = 0.1,
) -> tf.data.Dataset[tuple[tf.Tensor, tf.Tensor]]:
    """tf.data pipeline: normalise to 0..1, optionally shuffle and augment, batch, prefetch.

    With `augment`: a random rotation of up to `rotation` degrees, shift of up to `shift` of the size and
    zoom of up to `zoom`, each left out when 0."""
    import keras
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((to_model_input(images), labels.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        # Small geometric changes that keep the digit's identity (no flips: a flipped 2 is not a 2).
        steps = []
        if rotation:
            steps.append(keras.layers.RandomRotation(rotation / 360, fill_mode="constant", seed=seed))
        if shift:
            steps.append(keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed))
        if zoom:
            steps.append(keras.layers.RandomZoom(zoom, fill_mode="constant", seed=seed))
        if steps:
            augmenter = keras.Sequential(steps, name="augment")
            ds = ds.map(lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
