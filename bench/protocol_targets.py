"""The servers bench/protocol.py compares and what they are sent: the request sets (MNIST test digits the
reference model classifies right, so a wrong answer is the server's fault), Triton (PyTriton) and this
service started on the same SavedModel, each as a k6 `Target`."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sysconfig
import time
from base64 import b64encode
from pathlib import Path

import numpy as np
from k6_run import Kind, Target, run_k6
from load import PY, ROOT, Server, free_port, start_service

# The reference model classifies these MNIST test digits; one it gets wrong would fail every server's check.
CLASSIFY = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])  # kept: its variables die with it
print(json.dumps(model.serve(tf.constant(np.load(sys.argv[2]))).numpy().argmax(1).tolist()))
"""
# Triton's gRPC server has no reflection, and tritonclient ships compiled descriptors but no .proto files:
# k6 gets them as a protoset (FileDescriptorSet) built from those descriptors.
PROTOSET = """
import sys
from google.protobuf import descriptor_pb2
from tritonclient.grpc import model_config_pb2, service_pb2
files = descriptor_pb2.FileDescriptorSet()
for module in (model_config_pb2, service_pb2):  # dependency first
    module.DESCRIPTOR.CopyToProto(files.file.add())
open(sys.argv[1], "wb").write(files.SerializeToString())
"""


def write_request_sets(folder: Path, reference_model: Path) -> dict[int, Path]:
    """The request sets the k6 scripts send: 64 single-image requests and one of 256 images, MNIST test digits
    from the repository's fixture that the reference model classifies correctly, so a wrong digit is the
    server's fault. Pixels in 0..1 rounded to 4 places, as FP32 (the harness's bodies are the same digits so)."""
    with np.load(ROOT / "tests" / "fixtures" / "mnist_small.npz") as data:
        x = np.round(data["x_test"].astype(np.float64) / 255.0, 4)
        y = data["y_test"].astype(int)
    x32 = x.astype("<f4")[..., None]
    np.save(folder / "candidates.npy", x32)
    done = subprocess.run(
        [PY, "-c", CLASSIFY, str(reference_model), str(folder / "candidates.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    predicted = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    right = np.flatnonzero(predicted == y)
    print(
        f"request sets: {len(right)} of {len(y)} fixture digits classified correctly by the reference model; "
        f"using the first 256",
        flush=True,
    )

    def request(indices: np.ndarray) -> dict[str, object]:
        # FP32 values as tritonclient writes them in JSON (float32 -> Python float), e.g. 0.0038999998942017555
        body = {
            "inputs": [
                {
                    "name": "image",
                    "shape": [len(indices), 28, 28, 1],
                    "datatype": "FP32",
                    "data": x32[indices].reshape(-1).tolist(),
                }
            ],
            "outputs": [{"name": "probabilities"}],
        }
        return {
            "labels": y[indices].tolist(),
            "json": json.dumps(body),
            "raw_b64": b64encode(x32[indices].tobytes()).decode(),
        }

    sets = {1: [request(right[i : i + 1]) for i in range(64)], 256: [request(right[:256])]}
    paths = {}
    for images, requests in sets.items():
        paths[images] = folder / f"requests_{images}.json"
        paths[images].write_text(json.dumps({"images_per_request": images, "requests": requests}))
    return paths


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_triton(args: argparse.Namespace, model: Path, descriptors: Path, log_dir: Path) -> Target:
    env = {
        "MODEL_DIR": str(model),
        "PORT": "{port}",
        # Triton's Python stub links the interpreter's own libpython (see the peers' run_all.sh)
        "LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR")),
    }
    # its HTTP server turns ready before its models; gRPC listens on PORT + 1, metrics on PORT + 2
    server = Server(
        "triton",
        [str(args.triton_python), str(args.peers / "servers" / "pytriton_batched.py")],
        env,
        "/v2/models/lenet/ready",
        log_dir,
    )
    return Target(
        "Triton (PyTriton)", "triton", server, server.port + 1, {1: "lenet", 256: "lenet_bulk"}, str(descriptors)
    )


def start_this_service(
    args: argparse.Namespace,
    model: Path,
    work: Path,
    log_dir: Path,
    k6: Path,
    requests: dict[int, Path],
    fallback: Path | None,
) -> Target:
    shutil.copytree(model, work / "models" / "lenet5" / "1")
    grpc_port = free_port()
    env = {
        "LENET_MODELS_DIR": str(work / "models"),
        "LENET_JOBS_DIR": str(work / "jobs"),
        "LENET_GRPC_PORT": str(grpc_port),
        **dict(item.split("=", 1) for item in args.env),
    }
    server = start_service(env, log_dir)
    deadline = time.monotonic() + 10  # HTTP is ready; gRPC, when this version has it, starts with it
    while not port_open(grpc_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    target = Target(
        "this service",
        "service",
        server,
        grpc_port if port_open(grpc_port) else None,
        {1: "lenet5", 256: "lenet5"},
        "reflect",
    )
    if target.grpc_port is not None and args.grpc_descriptors != "reflect":
        target.descriptors = args.grpc_descriptors
    elif target.grpc_port is not None:  # prefer the server's own reflection; fall back to Triton's descriptors
        probe = run_k6(
            k6, target, Kind("grpc", "raw", 1), "once", {}, requests[1], log_dir / "service-grpc-probe.log", 10
        )
        if not probe.get("answers_right") and fallback is not None:
            print(
                f"this service: gRPC reflection did not work (see {log_dir / 'service-grpc-probe.log'}); "
                "using Triton's descriptors",
                flush=True,
            )
            target.descriptors = str(fallback)
    return target
