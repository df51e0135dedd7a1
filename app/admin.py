"""Operators' command line for the running service's admin endpoints.

    python -m app.admin train --epochs 3 --train-limit 10000 [--follow]
    python -m app.admin jobs
    python -m app.admin follow JOB_ID
    python -m app.admin cancel JOB_ID

The token comes from LENET_ADMIN_TOKEN (or --token); the service from --url (default http://HOST:PORT
from the LENET_ settings)."""
from __future__ import annotations

import argparse
import json
import sys

import httpx

from app.config import get_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m app.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"http://{settings.host}:{settings.port}")
    parser.add_argument("--token", default=None, help="default: $LENET_ADMIN_TOKEN")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="start a training job")
    for option, kind in (("arch", str), ("model", str), ("epochs", int), ("batch-size", int),
                         ("learning-rate", float), ("seed", int), ("train-limit", int)):
        train.add_argument(f"--{option}", type=kind)
    train.add_argument("--augment", action="store_true", default=None)
    train.add_argument("--promote", choices=["auto", "never", "force"])
    train.add_argument("--follow", action="store_true", help="show progress until the job ends")
    sub.add_parser("jobs", help="list jobs")
    for name in ("follow", "cancel", "show"):
        sub.add_parser(name).add_argument("job_id")
    args = parser.parse_args(argv)

    token = args.token or (settings.admin_token.get_secret_value() if settings.admin_token else "")
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        if args.command == "train":
            body = {k: v for k, v in vars(args).items()
                    if v is not None and k not in ("url", "token", "command", "follow")}
            job = _ok(http.post("/train", json=body))
            print(f"job {job['job_id']} started")
            return _follow(http, job["job_id"]) if args.follow else 0
        if args.command == "jobs":
            for job in _ok(http.get("/train"))["jobs"]:
                print(f"{job['job_id']}  {job['state']:<10} {job['options'].get('arch')}  "
                      f"version={job['version']}  accuracy={job['test_accuracy']}  {job['reason']}")
            return 0
        if args.command == "follow":
            return _follow(http, args.job_id)
        if args.command == "cancel":
            print(_ok(http.delete(f"/train/{args.job_id}"))["state"])
            return 0
        print(json.dumps(_ok(http.get(f"/train/{args.job_id}")), indent=2))
        return 0


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        error = response.json().get("error", {})
        raise SystemExit(f"error {response.status_code} {error.get('code')}: {error.get('message')}")
    return response.json()


def _follow(http: httpx.Client, job_id: str) -> int:
    """A progress bar on a terminal, one line per epoch elsewhere, from the event stream."""
    tty = sys.stdout.isatty()
    with http.stream("GET", f"/train/{job_id}/events", timeout=None) as stream:
        if stream.status_code >= 400:
            stream.read()
            _ok(stream)
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            kind = event.get("event")
            if kind in ("batch", "epoch") and (tty or kind == "epoch"):
                epochs, steps = event.get("epochs") or 1, event.get("steps") or 1
                step = steps if kind == "epoch" else event.get("step", 0)
                done = ((event.get("epoch", 1) - 1) + step / steps) / epochs
                bar = "#" * int(done * 30)
                text = (f"[{bar:<30}] {done:6.1%} epoch {event.get('epoch')}/{epochs} "
                        f"loss {event.get('loss', 0):.4f} acc {event.get('accuracy', 0):.4f}"
                        + (f" val_acc {event['val_accuracy']:.4f}" if "val_accuracy" in event else ""))
                print(("\r" + text) if tty else text, end="" if tty and kind == "batch" else "\n", flush=True)
            elif kind == "evaluated":
                print(f"{chr(10) if tty else ''}test accuracy {event.get('test_accuracy'):.4f}")
            elif kind == "state":
                print(f"job {job_id}: {event['state']}" + (f", version {event['version']}" if event.get("version") else "")
                      + (f" ({event['reason']})" if event.get("reason") else ""))
                return 0 if event["state"] == "succeeded" else 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
