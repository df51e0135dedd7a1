"""KServe Open Inference Protocol (V2): decode an infer request (JSON, or JSON header plus binary
tensors) into images, and encode the probabilities back the way the request asked for them; the model
metadata; and the model repository extension's requests and index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
# Model metadata declares one datatype and shape per tensor; what else the input takes goes in its "parameters"
# (as MLServer's metadata tensors carry them), as strings: a protocol $parameter is a string, number or boolean.
INPUT_PARAMETERS = {"accepted_datatypes": ",".join(DTYPES), "accepted_shapes": "[-1,28,28,1],[-1,28,28],[-1,784]"}


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
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 28, 28, 1], "parameters": INPUT_PARAMETERS}],
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
    if len(inputs) != 1:
        raise BadRequest(f"expected exactly one input tensor {INPUT_NAME!r}, got {len(inputs)}")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise BadRequest('inputs[0] must be an object: {"name", "shape", "datatype", "data"}')
    for field in ("name", "datatype"):
        if field not in tensor:
            raise BadRequest(f'the input tensor needs a "{field}"')
    shape = tensor.get("shape")
    dtype, count = check_input(tensor.get("name"), tensor.get("datatype"), shape, max_instances)
    flat = _tensor_data(tensor, dtype, count, binary, booleans=b"true" in body or b"false" in body)
    images = input_images(flat, dtype)
    binary_output = binary_output_requested(header)
    request_id = header.get("id")
    return InferRequest(images, str(request_id) if request_id is not None else None, binary_output)


def check_input(name: object, datatype: object, shape: object, max_instances: int) -> tuple[np.dtype, int]:
    """The checks of the input tensor, over REST and gRPC alike: its name, its datatype, and a shape of
    [N,28,28,1], [N,28,28] or [N,784] with 1 <= N <= max_instances. Returns the datatype's numpy dtype and
    the number of values the tensor holds (N x 784)."""
    if name != INPUT_NAME:
        raise BadRequest(f"unknown input {name!r}; this model takes {INPUT_NAME!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadRequest('"shape" must be a list of non-negative integers')
    dtype = DTYPES.get(str(datatype))
    if dtype is None:
        raise BadRequest(f"datatype {datatype!r} is not supported; use one of {', '.join(DTYPES)}")
    if not shape or shape[0] == 0:
        raise BadArray("the batch is empty")
    if shape[0] > max_instances:
        raise TooManyInstances(f"{shape[0]} images in one request; the limit is {max_instances}")
    if tuple(shape[1:]) not in ((28, 28, 1), (28, 28), (784,)):
        raise BadArray(f"input shape {shape} is not one of {INPUT_SHAPES}")
    return dtype, shape[0] * 28 * 28


def input_images(flat: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The values of an input that passed `check_input` (N x 784 of them) as float32 [N,28,28,1] in 0..1."""
    # UINT8 is always the 0..255 scale; float tensors follow the same rule as /predict arrays.
    images = normalise_batch(flat.reshape(-1, 28, 28), scale=255.0 if dtype.kind == "u" else None)
    return images[..., None]


def binary_output_requested(header: dict[str, object]) -> bool:
    """Whether the output goes back as binary data, by the binary-data extension's rule: an output's own
    "binary_data" decides for it, else the request's "binary_data_output", else JSON. The requested outputs are
    checked on the way: each an object naming an output of the model, at most once (as Triton answers: 400)."""
    default = _flag(_parameters(header), "binary_data_output") or False
    outputs = header.get("outputs")
    if outputs is None:
        return default
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise BadRequest('"outputs" must be a list of objects')
    binary, seen = default, set()
    for output in outputs:
        name = output.get("name")
        if not isinstance(name, str):
            raise BadRequest('each requested output needs a "name" (a string)')
        if name != OUTPUT_NAME:
            raise BadRequest(f"unknown output {name[:80]!r}; this model produces {OUTPUT_NAME!r}")
        if name in seen:
            raise BadRequest(f"output {name!r} is requested more than once")
        seen.add(name)
        parameters = _parameters(output)
        if "classification" in parameters:
            raise BadRequest("the classification extension is not supported; ask for the probabilities")
        own = _flag(parameters, "binary_data")
        binary = default if own is None else own
    return binary


def _flag(parameters: dict[str, object], key: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f'"{key}" must be a boolean')
    return value


def _parameters(item: dict[str, object]) -> dict[str, object]:
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be an object')
    return parameters


def _tensor_data(tensor: dict[str, object], dtype: np.dtype, count: int, binary: bytes, booleans: bool) -> np.ndarray:
    """The input's values; `booleans`: whether the JSON holds any (only then are the values looked at one by one)."""
    size = _parameters(tensor).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadArray(f"binary_data_size must be a whole number of bytes, not {orjson.dumps(size).decode()[:40]}")
        shape_text = f"{tensor.get('shape')} {tensor.get('datatype')}"
        if size != count * dtype.itemsize or size != len(binary):
            raise BadArray(
                f"binary_data_size {size} does not match the shape's {count * dtype.itemsize} bytes ({shape_text})"
                f" or the {len(binary)} bytes sent"
            )
        return np.frombuffer(binary, dtype=dtype)
    data = tensor.get("data")
    if not isinstance(data, list):
        raise BadArray('input needs "data" (a flat or nested list) or binary data')
    try:
        raw = np.asarray(data)  # its own dtype first: numpy would read "1" as 1.0 if told float64
    except (ValueError, TypeError):
        raise BadArray('"data" must be a regular list of numbers') from None
    # Strings ("U"), nulls ("O") and booleans alone ("b") show in the dtype; booleans among numbers do not, so
    # the values are looked at one by one (20 ms for 1024 images) only when the body holds a true or false.
    if raw.dtype.kind not in "iuf" or (booleans and not _plain_numbers(data)):
        raise BadArray('"data" must be numbers: booleans, strings and nulls are not pixel values')
    array = raw.astype(np.float64).reshape(-1)
    if array.size != count:
        raise BadArray(f'"data" has {array.size} values but the shape needs {count}')
    if dtype.kind == "u" and not np.array_equal(array, np.round(array)):
        raise BadArray(f'"data" of a {tensor.get("datatype")} tensor must be whole numbers')
    return array  # float64: range checks come before any narrowing cast


def _plain_numbers(data: list[object]) -> bool:
    """Whether every leaf of a (nested) JSON list is an int or a float: numpy would read true as 1.0."""
    stack = [data]
    while stack:
        for item in stack.pop():
            kind = type(item)
            if kind is list:
                stack.append(item)  # type: ignore[arg-type]
            elif kind is not float and kind is not int:
                return False
    return True


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


# ----- the model repository extension -----
def _request_object(body: bytes, what: str) -> dict[str, object]:
    """A repository request's JSON object; an empty body is an empty request (tritonclient sends one)."""
    if not body.strip():
        return {}
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return request


def index_request(body: bytes) -> bool:
    """The `ready` flag of a $repository_index_request: true lists only what is ready for inference."""
    ready = _request_object(body, "a repository index request").get("ready", False)
    if not isinstance(ready, bool):
        raise BadRequest('"ready" must be a boolean')
    return ready


def load_request(body: bytes) -> None:
    """A $repository_load_request: Triton's "config" and "file:" overrides have no meaning here (a version
    loads from its folder as exported), so any parameter is refused rather than silently ignored."""
    for key in _parameters(_request_object(body, "a load request")):
        raise BadRequest(f"parameter {key[:80]!r} is not supported: a model loads from its folder as exported")


def unload_request(body: bytes) -> None:
    """A $repository_unload_request: "unload_dependents" is accepted (a model here has no dependents)."""
    for key, value in _parameters(_request_object(body, "an unload request")).items():
        if key != "unload_dependents":
            raise BadRequest(f"parameter {key[:80]!r} is not supported; only unload_dependents is")
        if not isinstance(value, bool):
            raise BadRequest('"unload_dependents" must be a boolean')


def repository_index(models: list[dict[str, Any]], ready_only: bool) -> list[dict[str, str]]:
    """The $repository_index_response for ModelRepository.describe(): one entry per version on disk (one without
    a version for a model folder with none), its state as Triton names them, and the reason for it."""
    entries: list[dict[str, str]] = []
    for model in models:
        name = str(model["name"])
        if not model["versions"]:
            entries.append({"name": name, "state": "UNAVAILABLE", "reason": "no versions"})
        for version in model["versions"]:
            state, reason = _index_state(bool(model["unloaded"]), version)
            entries.append({"name": name, "version": str(version["version"]), "state": state, "reason": reason})
    return [entry for entry in entries if entry["state"] == "READY" or not ready_only]


def _index_state(unloaded: bool, version: dict[str, Any]) -> tuple[str, str]:
    state = version["state"]
    if unloaded:
        return "UNAVAILABLE", "unloaded"
    if state in ("serving", "loaded"):
        return "READY", ""
    if state == "loading":
        return "LOADING", ""
    if state == "refused":
        return "UNAVAILABLE", str(version.get("refused_reason") or "refused")
    if state == "rejected":
        return "UNAVAILABLE", "rejected by the training gate (its metadata.json says so)"
    return "UNAVAILABLE", "not loaded: a request for this version loads it"
