"""The one module that imports TensorFlow: load a SavedModel version and call it on a batch."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import REASON_LENGTH, BrokenModel, brief
from app.imaging.line import HEIGHT, SIGNATURE, WIDTH

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

log = logging.getLogger("lenet.model")

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
LINE_SHAPE = (HEIGHT, WIDTH, 1)  # the optional SIGNATURE (app.imaging.line): lines -> [N,T,11] CTC log-probabilities
LINE_CLASSES = NUM_CLASSES + 1  # a blank and the ten digits (app.imaging.ctc)

# What TensorFlow wraps an op's error in: the function node it ran in before it, the op after it.
_TF_WRAPPING = re.compile(r"^\s*\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\]\s*$")


def _reason(exc: Exception) -> str:
    """Why TensorFlow failed, as a client can read it: its message's first line without TensorFlow's wrapping."""
    first_line = brief(str(exc), 10 * REASON_LENGTH)
    return f"{type(exc).__name__}: {brief(_TF_WRAPPING.sub('', first_line), REASON_LENGTH)}"


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
    """A loaded version: `predict` maps float32 [N,28,28,1] in 0..1 to [N,10] probabilities; `read_lines`,
    when the version also reads whole lines (a `read_line` signature), float32 [N,32,320,1] number lines to
    [N,T,11] CTC log-probabilities (app.imaging.ctc)."""

    def __init__(self, path: Path, device: str = "/CPU:0") -> None:
        self.path = Path(path)
        self.device = device
        if not (self.path / "saved_model.pb").is_file():
            raise BrokenModel(f"{self.path}: no saved_model.pb")
        try:
            with tf.device(device):
                self._loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TensorFlow raises many types for a corrupt SavedModel
            raise BrokenModel(f"{self.path}: cannot load ({_reason(exc)})") from exc
        self._fn: Signature | None
        self._fn, self._input_name, self._output_name = self._pick_signature()
        self._line: Signature | None
        self._line, self._line_input = self._line_signature()
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

    def _line_signature(self) -> tuple[Signature | None, str]:
        signature = self._loaded.signatures.get(SIGNATURE)
        if signature is None:
            return None, ""
        inputs = signature.structured_input_signature[1]
        outputs = signature.structured_outputs
        shapes = [tuple(spec.shape[1:]) for spec in inputs.values()]
        if len(inputs) != 1 or shapes != [LINE_SHAPE] or len(outputs) != 1:
            raise BrokenModel(f"{self.path}: {SIGNATURE} takes {shapes}, expected one float32 [N,{HEIGHT},{WIDTH},1]")
        (out_spec,) = outputs.values()
        if out_spec.shape.rank != 3 or out_spec.shape[-1] != LINE_CLASSES:
            raise BrokenModel(f"{self.path}: {SIGNATURE} gives {out_spec.shape}, expected [N,T,11]")
        return signature, next(iter(inputs))

    def read_lines(self, lines: np.ndarray) -> np.ndarray | None:
        """CTC log-probabilities of each line, or None when this version has no line reader (or is closed)."""
        line = self._line
        if line is None:
            return None
        with tf.device(self.device):
            out = line(**{self._line_input: tf.constant(lines, dtype=tf.float32)})
        return np.asarray(next(iter(out.values())).numpy(), np.float64)

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
            raise BrokenModel(f"{self.path}: smoke prediction failed ({_reason(exc)})") from exc
        if (
            out.shape != (2, NUM_CLASSES)
            or not np.all(np.isfinite(out))
            or not np.allclose(out.sum(axis=1), 1, atol=1e-3)
        ):
            raise BrokenModel(f"{self.path}: smoke prediction gave {out.shape} values that are not probabilities")
        if self._line is not None:  # and its line reader: log-probabilities per frame
            try:
                frames = self.read_lines(np.zeros((1, *LINE_SHAPE), np.float32))
            except Exception as exc:
                raise BrokenModel(f"{self.path}: smoke line reading failed ({_reason(exc)})") from exc
            if frames is None or not np.allclose(np.exp(frames).sum(axis=-1), 1, atol=1e-3):
                raise BrokenModel(f"{self.path}: {SIGNATURE} gave values that are not log-probabilities")

    def warm_up(self, batch_sizes: list[int], repeats: int) -> None:
        for size in batch_sizes:
            for _ in range(repeats):
                self.predict(np.zeros((size, *INPUT_SHAPE), np.float32))
        if self._line is not None:
            self.read_lines(np.zeros((1, *LINE_SHAPE), np.float32))

    def close(self) -> None:
        # Dropping the references lets TensorFlow free the variables once no batch uses them.
        self._fn = None
        self._line = None
        self._loaded = None
