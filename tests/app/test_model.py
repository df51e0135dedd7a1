"""The TensorFlow side: loading versions, refusing broken ones, device choice."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.errors import BrokenModel
from app.model import SavedModelDigits, configure_devices
from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST

BUNDLED = BUNDLED_MODELS / "lenet5" / "1"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(FIXTURE_MNIST) as data:
        return (data["x_test"][:100] / 255.0).astype(np.float32)[..., None], data["y_test"][:100]


def test_bundled_version_loads_and_predicts(digits):
    images, labels = digits
    model = SavedModelDigits(BUNDLED)
    out = model.predict(images)
    assert out.shape == (100, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-4)
    assert (out.argmax(axis=1) == labels).mean() >= 0.98
    model.warm_up([1, 4], repeats=1)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(BrokenModel, match="no saved_model.pb"):
        SavedModelDigits(tmp_path)


def test_corrupt_variables_are_refused(tmp_path):
    broken = tmp_path / "1"
    shutil.copytree(BUNDLED, broken)
    (broken / "variables" / "variables.data-00000-of-00001").write_bytes(b"\x00" * 100)
    with pytest.raises(BrokenModel, match="cannot load|smoke"):
        SavedModelDigits(broken)


def test_a_checksum_mismatch_is_refused_with_tensorflow_s_whole_reason(tmp_path):
    # The variables' sizes right, their bytes not: TensorFlow's reason comes wrapped in its function node's name
    # and op; the refusal keeps the reason whole and leaves the wrapping out (it was cut mid-word: "Checksu").
    broken = tmp_path / "1"
    shutil.copytree(BUNDLED, broken)
    data = broken / "variables" / "variables.data-00000-of-00001"
    corrupt = bytearray(data.read_bytes())
    corrupt[1000:1100] = b"\x07" * 100
    data.write_bytes(bytes(corrupt))
    with pytest.raises(BrokenModel) as refused:
        SavedModelDigits(broken)
    reason = str(refused.value)
    assert reason.startswith(f"{broken}: cannot load (DataLossError: TensorBundle at ")
    assert reason.endswith("vs. calculated on the restored bytes " + reason.rsplit(" ", 1)[1])
    assert reason.endswith(")") and reason[-2].isdigit(), reason
    assert "{{" not in reason and "[Op:" not in reason, reason


def test_wrong_signature_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.export(str(tmp_path / "1"), verbose=False)
    with pytest.raises(BrokenModel, match=r"expected float32 \[N,28,28,1\]"):
        SavedModelDigits(tmp_path / "1")


def test_outputs_that_are_not_probabilities_are_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])  # logits
    model.export(str(tmp_path / "1"), verbose=False)
    with pytest.raises(BrokenModel, match="not probabilities"):
        SavedModelDigits(tmp_path / "1")


def test_cpu_when_no_gpu_is_visible(monkeypatch):
    import tensorflow as tf

    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [] if kind == "GPU" else real(kind))
    assert configure_devices() == "/CPU:0"


def test_device_choice_follows_what_tensorflow_sees():
    import tensorflow as tf

    assert configure_devices() == ("/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0")


def test_chosen_device_answers_like_the_cpu(digits):
    # On a CPU-only host both are the CPU; on a GPU host this compares the GPU the service uses with the CPU.
    images, _ = digits
    on_device = SavedModelDigits(BUNDLED, configure_devices()).predict(images)
    on_cpu = SavedModelDigits(BUNDLED, "/CPU:0").predict(images)
    np.testing.assert_allclose(on_device, on_cpu, atol=1e-3)
    assert (on_device.argmax(axis=1) == on_cpu.argmax(axis=1)).all()


def test_gpu_is_chosen_with_memory_growth(monkeypatch):
    import tensorflow as tf

    fake_gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [fake_gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda device, on: grown.append((device, on)))
    assert configure_devices() == "/GPU:0"
    assert grown == [(fake_gpu, True)]
