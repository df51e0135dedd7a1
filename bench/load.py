"""Load benchmark: this service against a naive FastAPI server and the in-process compute ceiling,
in one run, on the same LeNet-5 SavedModel. Server pinned to CPU 0, wrk to CPU 1 (taskset), traffic
only to 127.0.0.1, every wrk run bounded by --duration.

usage: .venv/bin/python bench/load.py [--duration 15] [--peers ../shared/peers] [--only service,naive,ceiling]
       [--out bench/results/load.json]
Needs wrk (apt-get install wrk). Uses the peers' wrk scripts and bodies (see ../shared/peers/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], ready_path: str, log_dir: Path):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        env = {**os.environ, **{k: v.replace("{port}", str(self.port)) for k, v in env.items()}}
        self.log = open(log_dir / f"{name}.server.log", "wb")  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", *argv],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.log.name}")
            try:
                if httpx.get(self.url + ready_path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{name} not ready")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def start_service(env: dict[str, str], log_dir: Path) -> Server:
    """This service as every launcher starts it (`python -m app`), on a free port, pinned to CPU 0."""
    return Server(
        "service", [PY, "-m", "app"], {"LENET_PORT": "{port}", "LENET_LOG_LEVEL": "warning", **env}, "/readyz", log_dir
    )


def batch_counters(server: Server) -> tuple[float, float]:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    total = sum(float(m) for m in re.findall(r"^lenet_batch_size_sum\{[^}]*\} (\S+)$", text, re.MULTILINE))
    count = sum(float(m) for m in re.findall(r"^lenet_batch_size_count\{[^}]*\} (\S+)$", text, re.MULTILINE))
    return total, count


def wrk(server: Server, path: str, body: dict[str, str], conns: int, duration: int, peers: Path) -> dict:
    env = {**os.environ, "WRK_DIR": str(peers / "wrk"), **body}
    script = str(peers / "wrk" / ("multipart.lua" if "PNG" in body else "body.lua"))
    before = batch_counters(server) if server.name == "service" else None
    done = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "20s",
            "-s",
            script,
            server.url + path,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    result = json.loads(line[len("WRKJSON ") :]) if line else {"error": done.stdout[-500:] + done.stderr[-500:]}
    if before is not None:
        after = batch_counters(server)
        batches = after[1] - before[1]
        result["mean_batch"] = round((after[0] - before[0]) / batches, 1) if batches else None
    return result


def run_server(server: Server, scenarios, args, peers) -> list[dict]:
    rows = []
    try:
        for label, path, body, conns, images in scenarios:
            wrk(server, path, body, min(conns, 16), 3, peers)  # warm-up
            result = wrk(server, path, body, conns, args.duration, peers)
            row = {"server": server.name, "scenario": label, "conns": conns, "images_per_request": images, **result}
            if "rps" in result:
                row["images_per_s"] = round(result["rps"] * images, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        server.stop()
    return rows


def ceiling(model_dir: Path) -> dict:
    code = f"""
import os, time, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
serve = tf.saved_model.load({str(model_dir)!r}).signatures["serving_default"]
name = list(serve.structured_input_signature[1])[0]
out = {{}}
for bs in (1, 64, 256):
    x = tf.constant(np.random.rand(bs, 28, 28, 1).astype("float32"))
    for _ in range(20): serve(**{{name: x}})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3: serve(**{{name: x}}); n += 1
    out[bs] = round(n * bs / (time.perf_counter() - t0))
print(json.dumps(out))
"""
    done = subprocess.run(
        ["taskset", "-c", "0", PY, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    parser.add_argument("--only", default="ceiling,service,naive,triton")
    parser.add_argument(
        "--triton-python",
        type=Path,
        default=Path("/tmp/venv-triton/bin/python"),
        help="a venv with nvidia-pytriton and tensorflow-cpu (../shared/peers/README.md); skipped when missing",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    parser.add_argument("--env", action="append", default=[], help="extra LENET_X=Y for the service")
    parser.add_argument("--scenarios", default=None, help="service scenarios to run, e.g. png:1,png:64 (default: all)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    peers = args.peers.resolve()
    model = peers / "model" / "1"  # the same SavedModel for every server (the peers' LeNet-5)
    work = Path(tempfile.mkdtemp(prefix="lenet-bench-"))
    shutil.copytree(model, work / "models" / "lenet5" / "1")
    log_dir = args.out.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    png = {"PNG": str(peers / "digits" / "00_label7.png")}
    v2 = {"BODY_FILE": str(peers / "bodies" / "v2_single.json"), "CONTENT_TYPE": "application/json"}
    v2bin = {
        "BODY_FILE": str(peers / "bodies" / "v2_single.bin"),
        "CONTENT_TYPE": "application/octet-stream",
        "HLEN": (peers / "bodies" / "v2_single.bin.hlen").read_text().strip(),
    }
    b256 = {"BODY_FILE": str(peers / "batch256.json"), "CONTENT_TYPE": "application/json"}
    only = set(args.only.split(","))
    report: dict[str, object] = {"duration_s": args.duration, "rows": []}
    rows: list[dict] = report["rows"]  # type: ignore[assignment]

    if "ceiling" in only:
        report["ceiling_images_per_s_1core"] = ceiling(model)
        print("compute ceiling (1 core, images/s by batch size):", report["ceiling_images_per_s_1core"], flush=True)
    if "service" in only:
        env = {"LENET_MODELS_DIR": str(work / "models"), "LENET_LOG_LEVEL": "warning"}
        env.update(dict(item.split("=", 1) for item in args.env))
        scenarios = [
            ("png", "/predict", png, 1, 1),
            ("png", "/predict", png, 16, 1),
            ("png", "/predict", png, 64, 1),
            ("v2-json", "/v2/models/lenet5/infer", v2, 64, 1),
            ("v2-binary", "/v2/models/lenet5/infer", v2bin, 64, 1),
            ("json256", "/predict", b256, 4, 256),
        ]
        if args.scenarios:
            wanted = set(args.scenarios.split(","))
            scenarios = [s for s in scenarios if f"{s[0]}:{s[3]}" in wanted]
        label = "service" + "".join(f" {item}" for item in args.env)
        rows += run_server(start_service(env, log_dir), scenarios, args, peers)
        for row in rows:
            row["server"] = label
    if "naive" in only:
        naive = Server(
            "naive",
            [PY, str(peers / "servers" / "naive.py")],
            {"MODEL_DIR": str(model), "PORT": "{port}"},
            "/health",
            log_dir,
        )
        rows += run_server(
            naive,
            [
                ("png", "/predict", png, 1, 1),
                ("png", "/predict", png, 16, 1),
                ("png", "/predict", png, 64, 1),
                ("json256", "/predict_json", b256, 4, 256),
            ],
            args,
            peers,
        )

    if "triton" in only and args.triton_python.exists():
        import sysconfig

        env = {
            "MODEL_DIR": str(model),
            "PORT": "{port}",
            # Triton's Python stub links the interpreter's own libpython (see the peers' run_all.sh)
            "LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR")),
        }
        b256v2 = {"BODY_FILE": str(peers / "bodies" / "v2_batch256.json"), "CONTENT_TYPE": "application/json"}
        triton = Server(
            "triton",
            [str(args.triton_python), str(peers / "servers" / "pytriton_batched.py")],
            env,
            "/v2/models/lenet/ready",
            log_dir,
        )  # its server turns ready before its models
        rows += run_server(
            triton,
            [
                ("v2-json", "/v2/models/lenet/infer", v2, 64, 1),
                ("v2-binary", "/v2/models/lenet/infer", v2bin, 64, 1),
                ("v2-json256", "/v2/models/lenet_bulk/infer", b256v2, 4, 256),
            ],
            args,
            peers,
        )
    elif "triton" in only:
        print(f"triton skipped: {args.triton_python} not found", flush=True)

    print("\n| server | request | c | req/s | images/s | p50 ms | p99 ms | mean batch | non-2xx |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['server']} | {r['scenario']} | {r['conns']} | {r.get('rps', 0):,.0f} | {r.get('images_per_s', 0):,.0f} "
            f"| {r.get('p50_ms', 0):.1f} | {r.get('p99_ms', 0):.1f} | {r.get('mean_batch') or '-'} | {r.get('non2xx', '?')} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
