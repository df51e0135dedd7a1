"""ModelInferRequest in, ModelInferResponse out. The checks of the input and the pixel rules are
app.protocol_v2's, shared with the REST side; this module only reads and writes the protobuf fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import service_pb2 as pb

from app.errors import BadArray, BadRequest
from app.protocol_v2 import INPUT_NAME, OUTPUT_NAME, binary_output_requested, check_input, input_images

# The typed contents field of each datatype; FP16 has none, so it travels in raw_input_contents only.
CONTENTS_FIELDS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "UINT8": "uint_contents"}


@dataclass(frozen=True)
class DecodedInfer:
    images: np.ndarray  # float32 [N,28,28,1] in 0..1
    raw_output: bool  # answer in raw_output_contents: the request sent raw_input_contents (as KServe answers)


def decode_infer(request: pb.ModelInferRequest, max_instances: int) -> DecodedInfer:
    if len(request.inputs) != 1:
        raise BadRequest(f"expected exactly one input tensor {INPUT_NAME!r}, got {len(request.inputs)}")
    tensor = request.inputs[0]
    shape = list(tensor.shape)
    dtype, count = check_input(tensor.name, tensor.datatype, shape, max_instances)
    raw = request.raw_input_contents
    if raw:
        if len(raw) != 1:
            raise BadRequest(f"raw_input_contents holds {len(raw)} tensors for 1 input")
        if tensor.HasField("contents"):
            raise BadRequest(f"input {INPUT_NAME!r} has both typed contents and raw_input_contents; send one")
        if len(raw[0]) != count * dtype.itemsize:
            raise BadArray(
                f"raw_input_contents[0] has {len(raw[0])} bytes; shape {shape} of {tensor.datatype} "
                f"needs {count * dtype.itemsize}"
            )
        flat = np.frombuffer(raw[0], dtype=dtype)
    else:
        field = CONTENTS_FIELDS.get(tensor.datatype)
        if field is None:
            raise BadRequest(f"{tensor.datatype} has no typed contents in the protocol; send raw_input_contents")
        values = getattr(tensor.contents, field)
        if len(values) != count:
            raise BadArray(f"contents.{field} has {len(values)} values but shape {shape} needs {count}")
        flat = np.array(values, dtype=np.float64)  # range checks come before any narrowing cast
    if request.outputs:  # checked as REST checks them: the model's one output, at most once, no classification
        binary_output_requested({"outputs": [_requested(output) for output in request.outputs]})
    return DecodedInfer(input_images(flat, dtype), raw_output=bool(raw))


def _requested(output: pb.ModelInferRequest.InferRequestedOutputTensor) -> dict[str, object]:
    """A requested output as the REST side reads one: its name and its parameters' values."""
    return {"name": output.name, "parameters": {key: _value(value) for key, value in output.parameters.items()}}


def _value(parameter: pb.InferParameter) -> object:
    """The value an InferParameter holds (bool, int, str or float), None when it holds none."""
    choice = parameter.WhichOneof("parameter_choice")
    return getattr(parameter, choice) if choice else None


def encode_infer(
    model: str, version: int, request_id: str, probabilities: np.ndarray, raw_output: bool
) -> pb.ModelInferResponse:
    """`probabilities` FP32 [N,10], raw (little-endian bytes) or as typed fp32_contents."""
    values = np.ascontiguousarray(probabilities, dtype="<f4")
    output = pb.ModelInferResponse.InferOutputTensor(name=OUTPUT_NAME, datatype="FP32", shape=list(values.shape))
    if not raw_output:
        output.contents.fp32_contents.extend(values.ravel().tolist())
    response = pb.ModelInferResponse(model_name=model, model_version=str(version), id=request_id, outputs=[output])
    if raw_output:
        response.raw_output_contents.append(values.tobytes())
    return response
