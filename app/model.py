"""The one module that imports TensorFlow: load a SavedModel version and call it on a batch."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import BrokenModel

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

log = logging.getLogger("lenet.model")

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# A SavedModel's serving signature: the input tensor by name in, the output tensors by name out.
Signature = Callable[..., dict[str, tf.Tensor]]


def configure_devices() -> str:
    """Use the first GPU when there is one (memory grown on demand, not grabbed up front); else the CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth can only be set before first use
            pass
    device = "/GPU:0" if gpus else "/CPU:0"
    log.info("inference device %s (%d GPU visible)", device, len(gpus))
    return device


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "/physical_device:GPU:0" or "/device:GPU:0"
    kind: str  # "CPU", "GPU", ...
    details: dict[str, object]  # a GPU's device_name and compute_capability, when TensorFlow knows them


def physical_devices() -> list[DeviceInfo]:
    devices = []
    for device in tf.config.list_physical_devices():
        try:
            details = dict(tf.config.experimental.get_device_details(device))
        except (ValueError, RuntimeError):  # not every device kind has details
            details = {}
        devices.append(DeviceInfo(device.name, device.device_type, details))
    return devices


def logical_devices() -> list[DeviceInfo]:
    """What `tf.device` can place work on. This starts TensorFlow's runtime: call configure_devices() first."""
    return [DeviceInfo(device.name, device.device_type, {}) for device in tf.config.list_logical_devices()]


def tensorflow_build() -> dict[str, object]:
    """TensorFlow's version and the CUDA/cuDNN it was built against (a GPU needs a matching driver)."""
    info = tf.sysconfig.get_build_info()
    return {
        "version": tf.__version__,
        **{key: info.get(key) for key in ("is_cuda_build", "cuda_version", "cudnn_version")},
    }


_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def device_executor(device: str) -> ThreadPoolExecutor:
    """One thread per device: model calls on a device run one at a time, off the event loop."""
    with _executors_lock:
        if device not in _executors:
            _executors[device] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer{device}")
        return _executors[device]


class SavedModelDigits:
    """A loaded version: `predict` maps float32 [N,28,28,1] in 0..1 to [N,10] probabilities."""

    def __init__(self, path: Path, device: str = "/CPU:0") -> None:
        self.path = Path(path)
        self.device = device
        if not (self.path / "saved_model.pb").is_file():
            raise BrokenModel(f"{self.path}: no saved_model.pb")
        try:
            with tf.device(device):
                self._loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TensorFlow raises many types for a corrupt SavedModel
            raise BrokenModel(f"{self.path}: cannot load ({type(exc).__name__}: {str(exc)[:200]})") from exc
        self._fn: Signature | None
        self._fn, self._input_name, self._output_name = self._pick_signature()
        self.smoke_test()

    def _pick_signature(self) -> tuple[Signature, str, str]:
        signature = self._loaded.signatures.get("serving_default")
        if signature is None:
            raise BrokenModel(f"{self.path}: no serving_default signature")
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise BrokenModel(f"{self.path}: signature takes {len(inputs)} inputs, expected 1 image tensor")
        ((input_name, spec),) = inputs.items()
        if spec.dtype != tf.float32 or spec.shape.rank != 4 or tuple(spec.shape[1:]) != INPUT_SHAPE:
            raise BrokenModel(
                f"{self.path}: input {input_name} is {spec.dtype.name}{spec.shape}, expected float32 [N,28,28,1]"
            )
        outputs = signature.structured_outputs
        if len(outputs) != 1:
            raise BrokenModel(f"{self.path}: signature has {len(outputs)} outputs, expected 1")
        ((output_name, out_spec),) = outputs.items()
        if out_spec.shape.rank != 2 or out_spec.shape[-1] != NUM_CLASSES:
            raise BrokenModel(f"{self.path}: output {output_name} has shape {out_spec.shape}, expected [N,10]")
        return signature, input_name, output_name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._fn is None:
            raise RuntimeError(f"{self.path}: predict after close")
        with tf.device(self.device):
            out = self._fn(**{self._input_name: tf.constant(batch, dtype=tf.float32)})
        return out[self._output_name].numpy()

    def smoke_test(self) -> None:
        """A version that cannot answer a blank and a bright image sensibly is not served."""
        probe = np.zeros((2, *INPUT_SHAPE), np.float32)
        probe[1, 8:20, 12:16] = 1.0
        try:
            out = self.predict(probe)
        except Exception as exc:
            raise BrokenModel(f"{self.path}: smoke prediction failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
        if (
            out.shape != (2, NUM_CLASSES)
            or not np.all(np.isfinite(out))
            or not np.allclose(out.sum(axis=1), 1, atol=1e-3)
        ):
            raise BrokenModel(f"{self.path}: smoke prediction gave {out.shape} values that are not probabilities")

    def warm_up(self, batch_sizes: list[int], repeats: int) -> None:
        for size in batch_sizes:
            for _ in range(repeats):
                self.predict(np.zeros((size, *INPUT_SHAPE), np.float32))

    def close(self) -> None:
        # Dropping the references lets TensorFlow free the variables once no batch uses them.
        self._fn = None
        self._loaded = None
