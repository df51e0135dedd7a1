"""Soak: steady /predict load for --minutes while new versions are published every --swap-every
seconds (and old ones deleted). Every answer is checked against the digit's label; memory is sampled.

usage: .venv/bin/python bench/soak.py [--minutes 5] [--swap-every 3] [--clients 4]
Uses MNIST test digits that both bundled models classify correctly, so any wrong answer is the
service's fault, not the model's.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, start_service
from overload import rss_mb


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--swap-every", type=float, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from training.evaluate import saved_model_predictor  # the check set is chosen offline, in this process

    with np.load(ROOT / "tests" / "fixtures" / "mnist_small.npz") as data:
        images, labels = data["x_test"], data["y_test"]
    x = (images / 255.0).astype(np.float32)[..., None]
    sources = [ROOT / "models" / "lenet5" / "1", ROOT / "models" / "lenet5-plus" / "1"]
    right = np.ones(len(labels), bool)
    for source in sources:
        right &= saved_model_predictor(source)(x).argmax(axis=1) == labels
    digits = [(png(images[i]), int(labels[i])) for i in np.flatnonzero(right)]

    work = Path(tempfile.mkdtemp(prefix="lenet-soak-"))
    model_dir = work / "models" / "lenet5"
    shutil.copytree(sources[0], model_dir / "1")
    log_dir = args.out.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = start_service(
        {
            "LENET_MODELS_DIR": str(work / "models"),
            "LENET_JOBS_DIR": str(work / "jobs"),
            "LENET_POLL_INTERVAL_S": "0.5",
        },
        log_dir,
    )
    stop = threading.Event()
    tally = {"ok": 0, "wrong": 0, "failed": 0, "versions": set()}
    lock = threading.Lock()
    rss: list[float] = []

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                data, label = digits[rng.integers(len(digits))]
                try:
                    r = http.post(server.url + "/predict", files={"image": ("d.png", data, "image/png")})
                    body = r.json()
                    good = r.status_code == 200 and body["predictions"][0]["digit"] == label
                    key = "ok" if good else "wrong" if r.status_code == 200 else "failed"
                except httpx.HTTPError:
                    key = "failed"
                with lock:
                    tally[key] += 1
                    if key == "ok":
                        tally["versions"].add(body["model"]["version"])

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(5)
        rss_start = rss_mb(server.process.pid)
        version, swaps, deadline = 1, 0, time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(args.swap_every)
            version += 1
            staging = model_dir / f".tmp-{version}"
            shutil.copytree(sources[version % 2], staging)
            staging.rename(model_dir / str(version))
            if (model_dir / str(version - 2)).exists():
                shutil.rmtree(model_dir / str(version - 2))
            swaps += 1
            rss.append(rss_mb(server.process.pid))
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "minutes": args.minutes,
        "swaps": swaps,
        "versions_seen": len(tally["versions"]),
        "requests_ok": tally["ok"],
        "wrong_answers": tally["wrong"],
        "failed_requests": tally["failed"],
        "rss_mb_start": round(rss_start, 1),
        "rss_mb_end": round(rss[-1], 1) if rss else None,
        "rss_mb_max": round(max(rss), 1) if rss else None,
        "check_digits": len(digits),
    }
    print(json.dumps(report, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0 if tally["wrong"] == 0 and tally["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
