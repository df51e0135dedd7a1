from __future__ import annotations

import json

import numpy as np
import pytest

from training.architectures import build_model
from training.data import to_model_input
from training.evaluate import saved_model_predictor
from training.export import export_version
from training.layout import METADATA_FILE, read_metadata, version_numbers


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    return build_model("lenet5")


def test_export_then_load_gives_the_same_predictions(tmp_path, model, small_mnist):
    target = export_version(model, tmp_path, "lenet5", {"architecture": "lenet5"})
    x = to_model_input(small_mnist.x_test[:64])
    np.testing.assert_allclose(saved_model_predictor(target)(x), model.predict(x, verbose=0), atol=1e-5)


def test_serving_signature_takes_image_and_returns_probabilities(tmp_path, model):
    import tensorflow as tf

    target = export_version(model, tmp_path, "lenet5", {})
    signature = tf.saved_model.load(str(target)).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.name == "image" and spec.shape.as_list() == [None, 28, 28, 1] and spec.dtype == tf.float32
    out = signature(image=tf.zeros((3, 28, 28, 1)))["probabilities"].numpy()
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_versions_increase_and_are_never_overwritten(tmp_path, model):
    first = export_version(model, tmp_path, "m", {"tag": "first"})
    second = export_version(model, tmp_path, "m", {"tag": "second"})
    assert (first.name, second.name) == ("1", "2")
    assert read_metadata(first)["tag"] == "first"
    meta = json.loads((second / METADATA_FILE).read_text())
    assert meta["version"] == 2 and meta["name"] == "m" and meta["tensorflow_version"]
    assert version_numbers(tmp_path, "m") == [1, 2]


def test_failed_export_leaves_no_version_and_no_temporary_folder(tmp_path, model):
    def broken_extras(folder):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        export_version(model, tmp_path, "m", {}, broken_extras)
    assert version_numbers(tmp_path, "m") == []
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp-")] == []


def test_temporary_and_stray_folders_are_not_versions(tmp_path):
    for name in (".tmp-abc", "3", "notes", "10", "5"):
        (tmp_path / "m" / name).mkdir(parents=True)
    for name in (".tmp-abc", "3", "notes", "10"):
        (tmp_path / "m" / name / "saved_model.pb").write_bytes(b"")
    (tmp_path / "m" / "7").write_text("a file, not a version")  # and 5 has no saved_model.pb
    assert version_numbers(tmp_path, "m") == [3, 10]


def test_a_temperature_is_applied_by_the_serving_signature(tmp_path, model, small_mnist):
    from training.calibration import scale

    x = to_model_input(small_mnist.x_test[:64])
    path = export_version(model, tmp_path, "lenet5", {"temperature": 0.5}, temperature=0.5)
    served = saved_model_predictor(path)(x)
    expected = scale(np.asarray(model.predict(x, verbose=0), np.float64), 0.5)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert (served.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert read_metadata(path)["temperature"] == 0.5
