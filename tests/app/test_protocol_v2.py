"""The V2 infer request's tensor data over REST (app/protocol_v2.py), as the pure decoder sees it: the messages a
client gets for a wrong binary_data_size and for values that are not the datatype's (a new user's findings)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.errors import BadArray
from app.protocol_v2 import decode_infer


def request(data: object = None, datatype: str = "FP32", **parameters: object) -> bytes:
    tensor: dict[str, object] = {"name": "image", "shape": [1, 784], "datatype": datatype}
    if data is not None:
        tensor["data"] = data
    if parameters:
        tensor["parameters"] = parameters
    return orjson.dumps({"inputs": [tensor]})


@pytest.mark.parametrize("size", ["3136", True, 3136.0, None], ids=["string", "boolean", "float", "null"])
def test_a_binary_data_size_that_is_not_an_integer_says_so(size):
    header = request(binary_data_size=size)
    body = header + np.zeros(784, "<f4").tobytes()
    if size is None:  # null is no size: the data must then be in "data"
        with pytest.raises(BadArray, match='needs "data"'):
            decode_infer(body, str(len(header)), max_instances=8)
        return
    with pytest.raises(BadArray) as caught:
        decode_infer(body, str(len(header)), max_instances=8)
    assert "must be a whole number of bytes" in caught.value.message and "shape x" not in caught.value.message


def test_a_binary_data_size_that_does_not_match_names_both_sizes():
    header = request(binary_data_size=100)
    with pytest.raises(
        BadArray, match=r"binary_data_size 100 does not match the shape's 3136 bytes \(\[1, 784\] FP32\)"
    ):
        decode_infer(header + np.zeros(784, "<f4").tobytes(), str(len(header)), max_instances=8)


@pytest.mark.parametrize("data", [[True] * 784, [0.5] * 783 + [False], [[0.0] * 783 + [True]]])
def test_booleans_are_not_pixels(data):
    # /predict refuses them (bad_array); the V2 decoder read true as 1.0
    with pytest.raises(BadArray, match="booleans"):
        decode_infer(request(data), None, max_instances=8)


def test_uint8_data_are_whole_numbers():
    with pytest.raises(BadArray, match="whole numbers"):
        decode_infer(request([1.5] * 784, "UINT8"), None, max_instances=8)
    assert decode_infer(request([255] * 784, "UINT8"), None, max_instances=8).images.max() == 1.0
    assert decode_infer(request([1.5] * 784, "FP32"), None, max_instances=8).images.max() == pytest.approx(1.5 / 255)


@pytest.mark.parametrize("value", ["1", "1e2", " 7 ", None, [1]], ids=["digit", "exponent", "spaced", "null", "list"])
def test_strings_and_nulls_are_not_pixels_either(value):
    # numpy read "1" as 1.0 when the body held no true or false (the second outside check's finding)
    with pytest.raises(BadArray):
        decode_infer(request([value] + [0.0] * 783), None, max_instances=8)
