"""KServe Open Inference Protocol (V2): decode an infer request (JSON, or JSON header plus binary
tensors) into images, and encode the probabilities back the way the request asked for them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from app.arrays import normalise_batch
from app.errors import BadArray, BadRequest, TooManyInstances

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
HEADER_LENGTH = "inference-header-content-length"
DTYPES: dict[str, np.dtype] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "UINT8": np.dtype("u1"),
    "FP16": np.dtype("<f2"),
}
INPUT_SHAPES = "[N,28,28,1], [N,28,28] or [N,784]"


@dataclass(frozen=True)
class InferRequest:
    images: np.ndarray  # float32 [N,28,28,1] in 0..1
    request_id: str | None
    binary_output: bool


def model_metadata(name: str, versions: list[int]) -> dict[str, object]:
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": "tensorflow_savedmodel",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 28, 28, 1]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, 10]}],
    }


def decode_infer(body: bytes, header_length: str | None, max_instances: int) -> InferRequest:
    binary = b""
    if header_length is not None:
        try:
            split = int(header_length)
        except ValueError:
            raise BadRequest("Inference-Header-Content-Length is not a number") from None
        if not 0 < split <= len(body):
            raise BadRequest(f"Inference-Header-Content-Length {split} does not fit a body of {len(body)} bytes")
        body, binary = body[:split], body[split:]
    try:
        header = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"infer request is not valid JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise BadRequest('an infer request is an object with "inputs": [{"name", "shape", "datatype", "data"}]')
    inputs = header["inputs"]
    if len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadRequest(f"expected exactly one input tensor {INPUT_NAME!r}, got {len(inputs)}")
    tensor = inputs[0]
    if tensor.get("name") != INPUT_NAME:
        raise BadRequest(f"unknown input {tensor.get('name')!r}; this model takes {INPUT_NAME!r}")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadRequest('"shape" must be a list of non-negative integers')
    dtype = DTYPES.get(str(tensor.get("datatype")))
    if dtype is None:
        raise BadRequest(f"datatype {tensor.get('datatype')!r} is not supported; use one of {', '.join(DTYPES)}")
    if not shape or shape[0] == 0:
        raise BadArray("the batch is empty")
    if shape[0] > max_instances:
        raise TooManyInstances(f"{shape[0]} images in one request; the limit is {max_instances}")
    if tuple(shape[1:]) not in ((28, 28, 1), (28, 28), (784,)):
        raise BadArray(f"input shape {shape} is not one of {INPUT_SHAPES}")
    count = int(np.prod(shape))
    flat = _tensor_data(tensor, dtype, count, binary)
    # UINT8 is always the 0..255 scale; float tensors follow the same rule as /predict arrays.
    images = normalise_batch(flat.reshape(shape[0], 28, 28), scale=255.0 if dtype.kind == "u" else None)
    outputs = header.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise BadRequest('"outputs" must be a list of objects')
    binary_output = bool(_parameters(header).get("binary_data_output")) or any(
        o.get("name") == OUTPUT_NAME and _parameters(o).get("binary_data") for o in outputs
    )
    request_id = header.get("id")
    return InferRequest(images[..., None], str(request_id) if request_id is not None else None, binary_output)


def _parameters(item: dict[str, object]) -> dict[str, object]:
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be an object')
    return parameters


def _tensor_data(tensor: dict[str, object], dtype: np.dtype, count: int, binary: bytes) -> np.ndarray:
    size = _parameters(tensor).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize or size != len(binary):
            raise BadArray(
                f"binary_data_size {size} does not match shape x {dtype.name} "
                f"({count * dtype.itemsize} bytes) or the {len(binary)} bytes sent"
            )
        return np.frombuffer(binary, dtype=dtype)
    data = tensor.get("data")
    if not isinstance(data, list):
        raise BadArray('input needs "data" (a flat or nested list) or binary data')
    try:
        array = np.asarray(data, dtype=np.float64).reshape(-1)
    except (ValueError, TypeError):
        raise BadArray('"data" must be a regular list of numbers') from None
    if array.size != count:
        raise BadArray(f'"data" has {array.size} values but the shape needs {count}')
    return array  # float64: range checks come before any narrowing cast


def encode_infer(
    model: str, version: int, request: InferRequest, probabilities: np.ndarray
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (binary: JSON header, then the raw FP32 tensor)."""
    output: dict[str, object] = {"name": OUTPUT_NAME, "datatype": "FP32", "shape": list(probabilities.shape)}
    response: dict[str, object] = {"model_name": model, "model_version": str(version), "outputs": [output]}
    if request.request_id is not None:
        response["id"] = request.request_id
    if request.binary_output:
        raw = np.ascontiguousarray(probabilities, dtype="<f4").tobytes()
        output["parameters"] = {"binary_data_size": len(raw)}
        header = orjson.dumps(response)
        return header + raw, {HEADER_LENGTH: str(len(header)), "content-type": "application/octet-stream"}
    output["data"] = probabilities.astype(np.float32).reshape(-1).tolist()
    return orjson.dumps(response), {"content-type": "application/json"}
