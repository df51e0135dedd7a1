"""Overload: measure what the service serves (wrk, 64 connections, closed loop, 10 s), then offer
--factor times that open-loop for --duration seconds (bench/openloop.py: Poisson arrivals that do not
wait for answers, connections opened as clients arrive, up to 4,096), then time the recovery.

Checks, each reported and failing the run (exit 1) when missed: every request answered (200, or 503
with Retry-After; none lost), every 200 names the right digit, the generator really offered the rate,
the served p99 of every 10 s window under --p99-limit-ms, RSS growth after the first 10 s under
--rss-growth-mb, a normal answer within 1 s of the load stopping, and the server's own count of
503s equal to the client's.

usage: .venv/bin/python bench/overload.py [--duration 60] [--factor 2] [--preopen 0]
Needs wrk (apt-get install wrk). Server on CPU 0; wrk and the generator on CPU 1; traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import PY, ROOT, start_service, wrk


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def served_503s(url: str) -> int:
    """503s the server says it gave: shed at admission plus turned away by a full batching queue."""
    text = httpx.get(url + "/metrics", timeout=5).text
    return int(
        sum(
            float(v)
            for v in re.findall(r"^lenet_(?:shed_requests|rejected)_total(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
        )
    )


def labelled_pngs(folder: Path) -> list[str]:
    """--png arguments for openloop.py: the peers' labelled digits (NN_labelD.png), or the example 7."""
    found = [f"{p}:{p.stem.rsplit('label', 1)[1]}" for p in sorted(folder.glob("*_label*.png"))]
    return found or [f"{ROOT / 'examples' / 'digit.png'}:7"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--factor", type=float, default=2.0, help="offered rate as a multiple of the measured one")
    parser.add_argument(
        "--preopen",
        type=int,
        default=0,
        help="open this many connections first (as wrk2 does) instead of opening them as requests arrive",
    )
    parser.add_argument("--p99-limit-ms", type=float, default=500)
    parser.add_argument("--rss-growth-mb", type=float, default=50)
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers")
    parser.add_argument("--env", action="append", default=[], help="extra LENET_X=Y for the service")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "overload.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lenet-overload-"))
    shutil.copytree(ROOT / "models" / "lenet5" / "1", work / "models" / "lenet5" / "1")
    log_dir = args.out.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = start_service(
        {
            "LENET_MODELS_DIR": str(work / "models"),
            "LENET_JOBS_DIR": str(work / "jobs"),
            **dict(item.split("=", 1) for item in args.env),
        },
        log_dir,
    )
    samples: list[tuple[float, float]] = []  # (seconds since the load started, RSS MB)
    stop = threading.Event()
    try:
        png = {"PNG": str(args.peers / "digits" / "00_label7.png")}
        wrk(server, "/predict", png, 16, 3, args.peers)  # warm-up
        capacity = wrk(server, "/predict", png, 64, 10, args.peers)["rps"]
        rate = round(capacity * args.factor)
        rss_before = rss_mb(server.process.pid)
        shed_before = served_503s(server.url)
        started = time.monotonic()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic() - started, rss_mb(server.process.pid)))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        summary_file = work / "openloop.json"
        command = [
            "taskset",
            "-c",
            "1",
            PY,
            str(ROOT / "bench" / "openloop.py"),
            str(server.port),
            "--rate",
            str(rate),
            "--duration",
            str(args.duration),
            "--preopen",
            str(args.preopen),
            "--out",
            str(summary_file),
        ]
        for spec in labelled_pngs(args.peers / "digits"):
            command += ["--png", spec]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=args.duration + 120)
        stop.set()
        sampler.join()
        load = json.loads(summary_file.read_text())
        ready = httpx.get(server.url + "/readyz", timeout=5).status_code
        shed_server = served_503s(server.url) - shed_before
    finally:
        stop.set()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    during = [mb for at, mb in samples if at <= args.duration]
    settled = [mb for at, mb in samples if at <= 10] or during
    windows = [w["p99_ms"] for w in load["served_p99_by_10s"] if w["p99_ms"] is not None]
    shed_client = load["statuses"].get("503", 0) + load["recovery_probes"]["shed"]
    report = {
        "capacity_rps_closed_loop_c64": capacity,
        "factor": args.factor,
        "preopen": args.preopen,
        **load,
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_at_10s": round(settled[-1], 1),
        "rss_mb_peak": round(max(during), 1),
        "rss_mb_end": round(during[-1], 1),
        "ready_after": ready,
        "server_counted_503s": shed_server,
        "client_saw_503s": shed_client,
    }
    checks = {
        "every request answered (none lost)": load["lost"] == 0,
        "only 200, or 503 with Retry-After": set(load["statuses"]) <= {"200", "503"}
        and load["shed_without_retry_after"] == 0,
        "every 200 names the right digit": load["wrong_answers"] == 0,
        f"offered at least {0.95 * args.factor:.2f}x the measured rate": load["offered_rps"] >= 0.95 * rate,
        f"served p99 under {args.p99_limit_ms:g} ms in every 10 s window": bool(windows)
        and max(windows) <= args.p99_limit_ms,
        f"RSS grew under {args.rss_growth_mb:g} MB after the first 10 s": max(during) - settled[-1]
        <= args.rss_growth_mb,
        "a 200 within 1 s of the load stopping": (load["recovery_first_200_after_load_s"] or 99) <= 1.0,
        "server and client count the same 503s": shed_server == shed_client,
        "ready afterwards": ready == 200,
    }
    report["checks"] = checks
    print(json.dumps(report, indent=1))
    print(
        f"\noffered {load['offered_rps']:,.0f} req/s ({args.factor:g}x the {capacity:,.0f} measured), "
        f"served {load['served_rps']:,.0f}/s, shed {load['shed_rps']:,.0f}/s, lost {load['lost']}; served "
        f"p50 {load['served_p50_ms']} ms, p99 {load['served_p99_ms']} ms; peak RSS {max(during):.0f} MB"
    )
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
