"""Overload: drive the service at about twice what it serves for --duration seconds with `hey`
(rate-limited workers), then check it recovers. Reports offered and served rate, shed (503) count,
p50/p99 of answered requests, peak RSS, and the time to the first normal answer after the load.

usage: .venv/bin/python bench/overload.py [--rate 4000] [--duration 60]
Needs hey (apt-get install hey). Server on CPU 0, hey on CPU 1, traffic only to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import PY, ROOT, Server  # noqa: E402

BOUNDARY = "overloadbench"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=4000, help="offered requests/s (the service serves ~2,000)")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "overload.json")
    args = parser.parse_args()
    if shutil.which("hey") is None:
        print("hey not found: apt-get install hey", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lenet-overload-"))
    shutil.copytree(ROOT / "models" / "lenet5" / "1", work / "models" / "lenet5" / "1")
    png = (ROOT / "examples" / "digit.png").read_bytes()
    body = work / "body"
    body.write_bytes(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
                     f"Content-Type: image/png\r\n\r\n".encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode())
    log_dir = args.out.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = Server("service", [PY, "-m", "uvicorn", "app.main:app", "--port", "{port}", "--no-access-log",
                                "--log-level", "warning", "--backlog", "4096"],
                    {"LENET_MODELS_DIR": str(work / "models"), "LENET_JOBS_DIR": str(work / "jobs"),
                     "LENET_LOG_LEVEL": "warning"}, "/readyz", log_dir)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_mb(server.process.pid))
            time.sleep(0.5)

    try:
        for _ in range(200):
            httpx.post(server.url + "/predict", files={"image": ("d.png", png, "image/png")})
        rss_before = rss_mb(server.process.pid)
        sampler = threading.Thread(target=sample)
        sampler.start()
        per_worker = max(1, args.rate // args.workers)
        started = time.monotonic()
        done = subprocess.run(["taskset", "-c", "1", "hey", "-z", f"{args.duration}s", "-c", str(args.workers),
                               "-q", str(per_worker), "-t", "20", "-m", "POST", "-D", str(body),
                               "-T", f"multipart/form-data; boundary={BOUNDARY}", "-o", "csv",
                               server.url + "/predict"], capture_output=True, text=True, timeout=args.duration + 120)
        elapsed = time.monotonic() - started
        # Recovery: the first request after the load must be answered normally, and fast.
        recovery_started = time.monotonic()
        after = httpx.post(server.url + "/predict", files={"image": ("d.png", png, "image/png")}, timeout=30)
        recovery = time.monotonic() - recovery_started
        stop.set()
        sampler.join()
        rss_after = rss_mb(server.process.pid)
    finally:
        stop.set()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status-code"]] = statuses.get(row["status-code"], 0) + 1
    ok = np.array([float(r["response-time"]) for r in rows if r["status-code"] == "200"]) * 1000
    # Steady state: leave out the first 5 s, when all workers connect at once.
    steady = np.array([float(r["response-time"]) for r in rows
                       if r["status-code"] == "200" and float(r["offset"]) >= 5]) * 1000
    shed = np.array([float(r["response-time"]) for r in rows if r["status-code"] == "503"]) * 1000
    report = {
        "offered_target_rps": per_worker * args.workers, "offered_rps": round(len(rows) / elapsed, 1),
        "served_rps": round(len(ok) / elapsed, 1), "statuses": statuses,
        "answered_p50_ms": round(float(np.percentile(ok, 50)), 1) if len(ok) else None,
        "answered_p99_ms": round(float(np.percentile(ok, 99)), 1) if len(ok) else None,
        "steady_answered_p50_ms": round(float(np.percentile(steady, 50)), 1) if len(steady) else None,
        "steady_answered_p99_ms": round(float(np.percentile(steady, 99)), 1) if len(steady) else None,
        "shed_p99_ms": round(float(np.percentile(shed, 99)), 1) if len(shed) else None,
        "rss_mb_before": round(rss_before, 1), "rss_mb_peak": round(max(samples), 1), "rss_mb_after": round(rss_after, 1),
        "recovery_first_request_s": round(recovery, 3), "recovery_status": after.status_code,
        "hey_errors": done.stderr[-500:],
    }
    print(json.dumps(report, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
