"""kserve's InferenceRESTClient against a running server, in a process of its own: kserve registers the same
`inference.*` protobuf names as tritonclient's gRPC stubs (which the server and other tests load), and one
process cannot hold both. Run by tests/e2e/test_v2_clients.py; prints one JSON object of what it saw."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferInput, InferRequest
from kserve.inference_client import InferenceRESTClient, RESTConfig


async def check(url: str, fixture: str) -> dict[str, object]:
    with np.load(fixture) as data:
        digits, labels = data["x_test"][:8], data["y_test"][:8]
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    seen: dict[str, object] = {}
    try:
        bad = {"inputs": [{"name": "x", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}]}
        for key, model in (("bad_input", "lenet5"), ("no_model", "nope")):
            try:
                await client.infer(url, bad, model_name=model)
                seen[key] = None
            except httpx.HTTPStatusError as exc:
                seen[key] = str(exc)
        seen["nope_ready"] = await client.is_model_ready(url, "nope")
        tensor = InferInput("image", [8, 784], "FP32")
        tensor.set_data_from_numpy(digits.reshape(8, 784).astype(np.float32) / 255.0, binary_data=True)
        answer = await client.infer(url, InferRequest("lenet5", [tensor]), model_name="lenet5")
        seen["digits"] = answer.outputs[0].as_numpy().argmax(axis=1).tolist()
        seen["labels"] = labels.tolist()
        seen["lenet5_ready"] = await client.is_model_ready(url, "lenet5")
    finally:
        await client.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(check(sys.argv[1], sys.argv[2]))))
