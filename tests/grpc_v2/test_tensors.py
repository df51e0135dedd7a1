"""ModelInferRequest decoding and ModelInferResponse encoding, checked against the REST decoder they share."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from tritonclient.grpc import service_pb2 as pb

from app.errors import BadArray, BadRequest, TooManyInstances
from app.grpc_v2.tensors import DecodedInfer, decode_infer, encode_infer
from app.protocol_v2 import decode_infer as decode_rest
from tests.conftest import FIXTURE_MNIST

with np.load(FIXTURE_MNIST) as _data:
    DIGITS = _data["x_test"][:3]  # uint8 [3,28,28]

SCALES = {"UINT8": 1, "FP32": 255, "FP64": 255, "FP16": 255}  # floats go as 0..1, UINT8 as 0..255
NUMPY = {"UINT8": "u1", "FP32": "<f4", "FP64": "<f8", "FP16": "<f2"}


def raw_request(datatype: str, shape: list[int], values: np.ndarray | None = None) -> pb.ModelInferRequest:
    values = DIGITS / SCALES[datatype] if values is None else values
    request = pb.ModelInferRequest(model_name="lenet5", id="r1")
    request.inputs.add(name="image", datatype=datatype, shape=shape)
    request.raw_input_contents.append(np.asarray(values, NUMPY[datatype]).tobytes())
    return request


def typed_request(datatype: str, shape: list[int], values: list[float] | None = None) -> pb.ModelInferRequest:
    field = {"UINT8": "uint_contents", "FP32": "fp32_contents", "FP64": "fp64_contents"}[datatype]
    request = pb.ModelInferRequest(model_name="lenet5")
    tensor = request.inputs.add(name="image", datatype=datatype, shape=shape)
    default = DIGITS if datatype == "UINT8" else DIGITS / SCALES[datatype]
    getattr(tensor.contents, field).extend(default.ravel().tolist() if values is None else values)
    return request


SHAPES = [
    pytest.param([3, 28, 28, 1], id="nhwc"),
    pytest.param([3, 28, 28], id="nhw"),
    pytest.param([3, 784], id="flat"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("datatype", ["UINT8", "FP32", "FP64", "FP16"])
def test_raw_inputs_decode_as_the_rest_decoder_decodes_the_same_tensor(datatype, shape):
    decoded = decode_infer(raw_request(datatype, shape), max_instances=8)
    rest = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": shape,
                    "datatype": datatype,
                    "data": (DIGITS / SCALES[datatype]).astype(NUMPY[datatype]).ravel().tolist(),
                }
            ]
        }
    )
    expected = decode_rest(rest, None, max_instances=8).images
    assert decoded.raw_output
    assert decoded.images.shape == (3, 28, 28, 1) and decoded.images.dtype == np.float32
    np.testing.assert_array_equal(decoded.images, expected)
    np.testing.assert_allclose(decoded.images[..., 0], DIGITS / 255, atol=1e-3)


@pytest.mark.parametrize("datatype", ["UINT8", "FP32", "FP64"])
def test_typed_contents_decode_like_raw_ones_and_ask_for_typed_outputs(datatype):
    typed = decode_infer(typed_request(datatype, [3, 784]), max_instances=8)
    raw = decode_infer(raw_request(datatype, [3, 784]), max_instances=8)
    assert not typed.raw_output
    np.testing.assert_allclose(typed.images, raw.images, atol=1e-6)


def with_raw(request: pb.ModelInferRequest, *chunks: bytes) -> pb.ModelInferRequest:
    del request.raw_input_contents[:]
    request.raw_input_contents.extend(chunks)
    return request


def with_outputs(request: pb.ModelInferRequest, *names: str) -> pb.ModelInferRequest:
    for name in names:
        request.outputs.add(name=name)
    return request


def one_input(name: str, datatype: str, shape: list[int]) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        inputs=[pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)]
    )


def two_inputs() -> pb.ModelInferRequest:
    request = raw_request("UINT8", [3, 784])
    request.inputs.add(name="image", datatype="UINT8", shape=[3, 784])
    return request


def typed_and_raw() -> pb.ModelInferRequest:
    request = raw_request("FP32", [3, 784])
    request.inputs[0].contents.fp32_contents.extend([0.0])
    return request


@pytest.mark.parametrize(
    "make,error,words",
    [
        pytest.param(lambda: pb.ModelInferRequest(model_name="lenet5"), BadRequest, "exactly one input", id="no-input"),
        pytest.param(two_inputs, BadRequest, "exactly one input", id="two-inputs"),
        pytest.param(lambda: one_input("x", "UINT8", [1, 784]), BadRequest, "unknown input 'x'", id="input-name"),
        pytest.param(
            lambda: one_input("image", "INT8", [1, 784]), BadRequest, "datatype 'INT8' is not supported", id="datatype"
        ),
        pytest.param(lambda: raw_request("UINT8", [0, 784], np.zeros(0)), BadArray, "empty", id="empty-batch"),
        pytest.param(
            lambda: raw_request("UINT8", [9, 784], np.zeros((9, 784))), TooManyInstances, "limit is 8", id="too-many"
        ),
        pytest.param(lambda: raw_request("UINT8", [3, 28, 29]), BadArray, "not one of", id="shape"),
        pytest.param(lambda: raw_request("UINT8", [-3, 784]), BadRequest, "non-negative", id="negative-dim"),
        pytest.param(
            lambda: with_raw(raw_request("UINT8", [3, 784]), bytes(100)), BadArray, "needs 2352", id="raw-size"
        ),
        pytest.param(
            lambda: with_raw(raw_request("UINT8", [3, 784]), bytes(2352), bytes(2352)),
            BadRequest,
            "2 tensors for 1 input",
            id="two-raw",
        ),
        pytest.param(typed_and_raw, BadRequest, "both typed contents and raw", id="typed-and-raw"),
        pytest.param(lambda: typed_request("FP32", [3, 784], [0.0] * 10), BadArray, "has 10 values", id="typed-count"),
        pytest.param(
            lambda: one_input("image", "FP16", [1, 784]), BadRequest, "send raw_input_contents", id="fp16-typed"
        ),
        pytest.param(
            lambda: raw_request("FP32", [3, 784], np.full((3, 784), 256.0)), BadArray, "between 0 and 255", id="range"
        ),
        pytest.param(lambda: raw_request("FP64", [3, 784], np.full((3, 784), np.nan)), BadArray, "finite", id="nan"),
        pytest.param(
            lambda: typed_request("UINT8", [3, 784], [300] * 2352), BadArray, "between 0 and 255", id="uint-over-255"
        ),
        pytest.param(
            lambda: with_outputs(raw_request("UINT8", [3, 784]), "logits"),
            BadRequest,
            "unknown output 'logits'",
            id="unknown-output",
        ),
        pytest.param(
            lambda: with_outputs(raw_request("UINT8", [3, 784]), "probabilities", "probabilities"),
            BadRequest,
            "more than once",
            id="duplicate-output",
        ),
        pytest.param(
            lambda: with_parameter(raw_request("UINT8", [3, 784]), "classification", int64_param=3),
            BadRequest,
            "classification extension is not supported",
            id="classification",
        ),
        pytest.param(
            lambda: with_parameter(raw_request("UINT8", [3, 784]), "binary_data", string_param="yes"),
            BadRequest,
            "must be a boolean",
            id="binary-data-not-bool",
        ),
    ],
)
def test_bad_requests_name_the_problem(make, error, words):
    with pytest.raises(error) as caught:
        decode_infer(make(), max_instances=8)
    assert type(caught.value) is error and words in caught.value.message


def with_parameter(request: pb.ModelInferRequest, key: str, **value: object) -> pb.ModelInferRequest:
    request.outputs.add(name="probabilities").parameters[key].CopyFrom(pb.InferParameter(**value))
    return request


def test_the_one_output_may_be_requested_by_name_with_rest_parameters():
    assert decode_infer(with_outputs(raw_request("UINT8", [3, 784]), "probabilities"), 8).raw_output
    request = with_parameter(raw_request("UINT8", [3, 784]), "binary_data", bool_param=False)
    assert decode_infer(request, 8).raw_output  # binary_data is HTTP's: gRPC answers raw to a raw request


PROBABILITIES = np.arange(30, dtype=np.float64).reshape(3, 10) / 100


def test_raw_answers_carry_little_endian_fp32_bytes():
    response = encode_infer("lenet5", 2, "r1", PROBABILITIES, raw_output=True)
    assert (response.model_name, response.model_version, response.id) == ("lenet5", "2", "r1")
    (output,) = response.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("probabilities", "FP32", [3, 10])
    assert not output.HasField("contents")
    (raw,) = response.raw_output_contents
    np.testing.assert_array_equal(np.frombuffer(raw, "<f4").reshape(3, 10), PROBABILITIES.astype(np.float32))


def test_typed_answers_carry_fp32_contents():
    response = encode_infer("lenet5", 1, "", PROBABILITIES, raw_output=False)
    assert not response.raw_output_contents and response.id == ""
    values = np.array(response.outputs[0].contents.fp32_contents, np.float32).reshape(3, 10)
    np.testing.assert_array_equal(values, PROBABILITIES.astype(np.float32))


def test_a_decoded_request_is_what_the_batcher_takes():
    decoded = decode_infer(raw_request("UINT8", [3, 784]), 8)
    assert isinstance(decoded, DecodedInfer) and decoded.images.flags.c_contiguous
