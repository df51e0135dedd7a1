"""One k6 run against a V2 server for bench/protocol.py: what is sent (`Kind`), where (`Target`), and the run
itself (`run_k6`): k6 pinned to CPU 1, its summary read back, and the CPU that the server and k6 used while the
load ran (from /proc)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from load import ROOT, Server

K6_DIR = ROOT / "bench" / "k6"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
