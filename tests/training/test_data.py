from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURE_MNIST
from training.data import IDX_NAMES, DataError, load_mnist, make_dataset, read_idx, split_validation


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_idx_folder(folder: Path, mnist, compress: bool) -> Path:
    folder.mkdir()
    for key, stem in IDX_NAMES.items():
        write_idx(folder / stem, getattr(mnist, key), compress)
    return folder


def write_npz(path: Path, **arrays) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def as_dict(mnist) -> dict[str, np.ndarray]:
    return {key: getattr(mnist, key) for key in IDX_NAMES}


def test_npz_loads_with_keras_layout(small_mnist):
    assert small_mnist.x_train.shape == (1000, 28, 28)
    assert small_mnist.x_test.shape == (500, 28, 28)
    assert small_mnist.x_train.dtype == np.uint8
    assert small_mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.parametrize("compress", [pytest.param(False, id="raw"), pytest.param(True, id="gzip")])
def test_idx_folder_loads_same_arrays(tmp_path, small_mnist, compress):
    folder = write_idx_folder(tmp_path / "idx", small_mnist, compress)
    loaded = load_mnist(folder)
    for key in IDX_NAMES:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(small_mnist, key))
    assert loaded.sha256() == small_mnist.sha256()


def test_environment_variable_names_the_file(monkeypatch):
    monkeypatch.setenv("LENET_MNIST_PATH", str(FIXTURE_MNIST))
    assert load_mnist().source == str(FIXTURE_MNIST)


def test_download_failure_says_how_to_load_offline(monkeypatch):
    import keras

    monkeypatch.delenv("LENET_MNIST_PATH", raising=False)

    def offline():
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="LENET_MNIST_PATH"):
        load_mnist()


def test_fetch_mnist_offline_names_its_own_option(monkeypatch, tmp_path, capsys):
    # An outside check: offline, `fetch-mnist` said to set LENET_MNIST_PATH or pass --data, neither of which it reads.
    import keras

    from training.__main__ import main

    def offline():
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    assert main(["fetch-mnist", "--to", str(tmp_path / "mnist.npz")]) == 2
    error = capsys.readouterr().err
    assert "pass --from PATH" in error and "--data" not in error and "LENET_MNIST_PATH" not in error, error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"x_train,y_train\n1,2\n", "not an .npz file", id="text"),
        pytest.param(b"\x93NUMPY\x01\x00v\x00{'descr': '|O'", "not an .npz file", id="pickled-npy"),
    ],
)
def test_a_file_that_is_not_an_npz_says_so_without_pickle_advice(tmp_path, content, message):
    # An outside check: a text file passed as --data was answered with numpy's advice to load it with allow_pickle
    # ("if you trust the file"): it is no pickle, and the advice is unsafe.
    path = tmp_path / "mnist.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as refused:
        load_mnist(path)
    assert "pickle" not in str(refused.value)


def test_a_folder_holding_an_npz_says_to_pass_the_file(tmp_path, small_mnist):
    folder = tmp_path / "datasets"
    folder.mkdir()
    write_npz(folder / "mnist.npz", **as_dict(small_mnist))
    with pytest.raises(DataError, match=r"holds mnist.npz: pass the file"):
        load_mnist(folder)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_mnist(tmp_path / "nope.npz")


def test_corrupt_npz_names_the_file(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(DataError, match=f"{bad}: not a readable .npz"):
        load_mnist(bad)


def test_npz_missing_arrays(tmp_path, small_mnist):
    arrays = as_dict(small_mnist)
    del arrays["y_test"]
    with pytest.raises(DataError, match=r"missing arrays \['y_test'\]"):
        load_mnist(write_npz(tmp_path / "m.npz", **arrays))


def test_label_out_of_range_is_reported_with_its_index(tmp_path, small_mnist):
    arrays = as_dict(small_mnist)
    arrays["y_train"] = arrays["y_train"].copy()
    arrays["y_train"][17] = 11
    with pytest.raises(DataError, match=r"y_train\[17\] = 11, labels must be 0..9"):
        load_mnist(write_npz(tmp_path / "m.npz", **arrays))


@pytest.mark.parametrize(
    "key,value,message",
    [
        pytest.param("x_train", np.zeros((10, 32, 32), np.uint8), r"x_train has shape \(10, 32, 32\)", id="shape"),
        pytest.param("y_test", np.zeros(499, np.uint8), "500 images but 499 labels", id="count"),
        pytest.param("x_test", np.full((500, 28, 28), 300.0), "outside 0..255", id="pixel-range"),
        pytest.param("y_train", np.full(1000, 0.5), "expected integer labels", id="float-labels"),
        pytest.param("x_test", np.full((500, 28, 28), 12.5), "fractions above 1", id="fractions-above-1"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, small_mnist, key, value, message):
    arrays = as_dict(small_mnist)
    arrays[key] = value
    with pytest.raises(DataError, match=message):
        load_mnist(write_npz(tmp_path / "m.npz", **arrays))


@pytest.mark.parametrize("scale", [pytest.param(1.0, id="0..255-floats"), pytest.param(255.0, id="0..1-floats")])
def test_float_pixels_are_read_as_the_brightness_they_hold(tmp_path, small_mnist, scale):
    # An outside check: MNIST saved as 0..1 floats became all-black uint8 (0.7 -> 0), and training on it "succeeded"
    # at 9.8% (chance), exported as a version to serve. Floats of whole numbers are 0..255 pixels; 0..1, brightness.
    arrays = as_dict(small_mnist)
    arrays["x_train"] = arrays["x_train"].astype(np.float32) / scale
    loaded = load_mnist(write_npz(tmp_path / "m.npz", **arrays))
    assert loaded.x_train.dtype == np.uint8
    np.testing.assert_array_equal(loaded.x_train, small_mnist.x_train)


def test_truncated_idx_file(tmp_path, small_mnist):
    folder = write_idx_folder(tmp_path / "idx", small_mnist, compress=False)
    images = folder / IDX_NAMES["x_test"]
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: header says 392000 bytes"):
        load_mnist(folder)


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(path)


def test_idx_folder_missing_file(tmp_path, small_mnist):
    folder = write_idx_folder(tmp_path / "idx", small_mnist, compress=True)
    (folder / (IDX_NAMES["y_train"] + ".gz")).unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        load_mnist(folder)


def test_validation_split_is_seeded_and_disjoint(small_mnist):
    (x1, _y1), (xv1, _) = split_validation(small_mnist, 0.1, seed=3)
    (x2, _), (xv2, _) = split_validation(small_mnist, 0.1, seed=3)
    assert len(xv1) == 100 and len(x1) == 900
    np.testing.assert_array_equal(xv1, xv2)
    np.testing.assert_array_equal(x1, x2)
    (_, _), (xv3, _) = split_validation(small_mnist, 0.1, seed=4)
    assert not np.array_equal(xv1, xv3)
    (xl, _), (xvl, _) = split_validation(small_mnist, 0.1, seed=3, limit=200)
    assert len(xl) + len(xvl) == 200


@pytest.mark.parametrize("augment", [pytest.param(False, id="plain"), pytest.param(True, id="augmented")])
def test_dataset_is_normalised_and_batched(small_mnist, augment):
    ds = make_dataset(small_mnist.x_test, small_mnist.y_test, 64, shuffle=True, augment=augment)
    x, y = next(iter(ds))
    assert x.shape == (64, 28, 28, 1) and x.dtype.name == "float32"
    assert float(x.numpy().min()) >= 0.0 and float(x.numpy().max()) <= 1.0 + 1e-6
    assert float(x.numpy().max()) > 0.5
    assert y.dtype.name == "int32"
    assert sum(int(b[0].shape[0]) for b in ds) == 500


def test_augmentation_strength_is_configurable(small_mnist):
    images, labels = small_mnist.x_test[:64], small_mnist.y_test[:64]
    ((plain, _),) = make_dataset(images, labels, 64).take(1)
    ((off, _),) = make_dataset(images, labels, 64, augment=True, rotation=0, shift=0, zoom=0).take(1)
    np.testing.assert_array_equal(off.numpy(), plain.numpy())  # every change at 0: the images as they are

    def mean_change(**strength: float) -> float:
        ((x, _),) = make_dataset(images, labels, 64, augment=True, seed=5, **strength).take(1)
        return float(np.abs(x.numpy() - plain.numpy()).mean())

    small = mean_change(rotation=0, shift=0.02, zoom=0)
    large = mean_change(rotation=0, shift=0.2, zoom=0)
    assert 0 < small < large  # the shift is applied, and its size is the option's
    assert mean_change(rotation=30, shift=0, zoom=0) > 0
    assert mean_change(rotation=0, shift=0, zoom=0.3) > 0
