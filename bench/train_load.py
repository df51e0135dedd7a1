"""/predict latency while a /train job runs, against the same server idle, in one run.

The server is pinned to CPU 0 (its training job inherits that, at niceness LENET_TRAIN_NICE with
LENET_TRAIN_THREADS threads), wrk to CPU 1; single-PNG requests at --conns for --duration seconds.

usage: .venv/bin/python bench/train_load.py [--duration 15] [--conns 16] [--data ../shared/datasets/mnist.npz]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, start_service, wrk
from mnist_file import add_data_argument, require_data

TOKEN = "bench-token"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--conns", type=int, default=16)
    add_data_argument(parser)
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_load.json")
    args = parser.parse_args(argv)
    require_data(parser, args.data)
    work = Path(tempfile.mkdtemp(prefix="lenet-train-bench-"))
    shutil.copytree(ROOT / "models" / "lenet5" / "1", work / "models" / "lenet5" / "1")
    log_dir = args.out.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "LENET_MODELS_DIR": str(work / "models"),
        "LENET_JOBS_DIR": str(work / "jobs"),
        "LENET_ADMIN_TOKEN": TOKEN,
        "LENET_MNIST_PATH": str(args.data.resolve()),
        "LENET_LOG_LEVEL": "warning",
    }
    server = start_service(env, log_dir)
    png = {"PNG": str(args.peers.resolve() / "digits" / "00_label7.png")}
    rows = {}
    try:
        wrk(server, "/predict", png, args.conns, 3, args.peers.resolve())  # warm-up
        rows["idle"] = wrk(server, "/predict", png, args.conns, args.duration, args.peers.resolve())
        auth = {"Authorization": f"Bearer {TOKEN}"}
        job = httpx.post(
            server.url + "/train", headers=auth, json={"arch": "lenet5", "epochs": 50, "promote": "never"}
        ).json()
        deadline = time.monotonic() + 120
        while httpx.get(f"{server.url}/train/{job['job_id']}", headers=auth).json()["progress"].get("step") is None:
            if time.monotonic() > deadline:
                raise RuntimeError("training did not start")
            time.sleep(0.5)
        rows["training"] = wrk(server, "/predict", png, args.conns, args.duration, args.peers.resolve())
        status = httpx.get(f"{server.url}/train/{job['job_id']}", headers=auth).json()
        rows["training"]["job_progress"] = status["progress"]
        httpx.delete(f"{server.url}/train/{job['job_id']}", headers=auth)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| /predict (PNG) | c | req/s | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|---:|")
    for label, r in rows.items():
        print(
            f"| {label} | {args.conns} | {r.get('rps', 0):,.0f} | {r.get('p50_ms', 0):.1f} | {r.get('p99_ms', 0):.1f} "
            f"| {r.get('non2xx')} |"
        )
    if "job_progress" in rows.get("training", {}):
        p = rows["training"]["job_progress"]
        print(
            f"training job meanwhile: epoch {p.get('epoch')}/{p.get('epochs')}, step {p.get('step')}/{p.get('steps')}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
