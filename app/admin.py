"""Operators' command line for the running service's admin endpoints.

    python -m app.admin train --epochs 3 --train-limit 10000 [--follow]
    python -m app.admin jobs
    python -m app.admin follow JOB_ID
    python -m app.admin show JOB_ID
    python -m app.admin cancel JOB_ID

The token comes from LENET_ADMIN_TOKEN (or --token); the service from --url (default http://HOST:PORT
from the LENET_ settings). The training options are the API's (app.schemas.TrainRequest); an option
left out takes the service's default. Exit status: 0 done (a followed job succeeded), 1 a followed job
did not succeed, 2 the service could not be reached or refused the request (one line on stderr)."""

from __future__ import annotations

import argparse
import json
import sys
import typing

import httpx

from app.config import get_settings
from app.jobs.progress import job_progress
from app.jobs.records import JobState
from app.schemas import TrainRequest


class AdminError(Exception):
    """What went wrong, said in one line on stderr (no traceback)."""


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    args = _parser(f"http://{settings.host}:{settings.port}").parse_args(argv)
    token = args.token or (settings.admin_token.get_secret_value() if settings.admin_token else "")
    try:
        url = _service_url(args.url)
        if not token:
            raise AdminError("no admin token: set LENET_ADMIN_TOKEN or pass --token")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            return _run(http, args)
    except AdminError as exc:
        message = str(exc)
    except httpx.ConnectError as exc:
        message = f"cannot connect to {args.url} ({exc}): is the service running there? (--url)"
    except httpx.TimeoutException as exc:
        message = f"{args.url} did not answer in time ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        message = f"talking to {args.url}: {type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        return 130
    print(f"error: {message}", file=sys.stderr)
    return 2


def _parser(default_url: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=default_url, help=f"the service (default: {default_url})")
    parser.add_argument("--token", default=None, help="default: $LENET_ADMIN_TOKEN")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="start a training job")
    _add_train_options(train)
    train.add_argument("--follow", action="store_true", help="show progress until the job ends")
    sub.add_parser("jobs", help="list jobs")
    for name in ("follow", "cancel", "show"):
        sub.add_parser(name).add_argument("job_id")
    return parser


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """One flag per field of the API's TrainRequest; left out, it is not sent (the service's default holds)."""
    for name, info in TrainRequest.model_fields.items():
        kind: typing.Any = info.annotation
        choices = None
        if typing.get_origin(kind) is typing.Literal:
            kind, choices = str, list(typing.get_args(kind))
        else:
            kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)
        default = "" if info.default is None else f" (service default: {info.default})"
        help = f"{info.description or ''}{default}".replace("%", "%%")
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help)
        else:
            parser.add_argument(flag, dest=name, type=kind, choices=choices, default=None, help=help)


def _service_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise AdminError(f"--url {url!r} is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AdminError(f"--url {url!r}: expected http://HOST:PORT")
    return parsed


def _run(http: httpx.Client, args: argparse.Namespace) -> int:
    if args.command == "train":
        body = {name: getattr(args, name) for name in TrainRequest.model_fields if getattr(args, name) is not None}
        job = _ok(http.post("/train", json=body))
        print(f"job {job['job_id']} started")
        return _follow(http, job["job_id"]) if args.follow else 0
    if args.command == "jobs":
        for job in _ok(http.get("/train"))["jobs"]:
            print(
                f"{job['job_id']}  {job['state']:<10} {job['options'].get('arch')}  "
                f"version={job['version']}  accuracy={job['test_accuracy']}  {job['reason']}"
            )
        return 0
    if args.command == "follow":
        return _follow(http, args.job_id)
    if args.command == "cancel":
        print(_ok(http.delete(f"/train/{args.job_id}"))["state"])
        return 0
    print(json.dumps(_ok(http.get(f"/train/{args.job_id}")), indent=2))
    return 0


def _ok(response: httpx.Response) -> dict[str, typing.Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        raise AdminError(f"{response.status_code} {error.get('code')}: {error.get('message')}")
    if response.status_code >= 400 or not isinstance(body, dict):
        raise AdminError(
            f"{response.status_code} from {response.url}: not an answer of the LeNet Serve admin API (check --url)"
        )
    return body


def _follow(http: httpx.Client, job_id: str) -> int:
    """A progress bar on a terminal, one line per epoch elsewhere, from the event stream; then the outcome
    (with its cause when the job failed)."""
    tty = sys.stdout.isatty()
    events: list[dict[str, typing.Any]] = []
    with http.stream("GET", f"/train/{job_id}/events", timeout=httpx.Timeout(30, read=None)) as stream:
        if stream.status_code >= 400:
            stream.read()
            _ok(stream)
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue  # event names and keep-alive comments
            event = json.loads(line[6:])
            kind = event.get("event")
            if kind in ("batch", "epoch"):
                events.append(event)
                if tty or kind == "epoch":
                    text = _progress_line(job_progress(events))
                    print(("\r" + text) if tty else text, end="" if tty and kind == "batch" else "\n", flush=True)
            elif kind == "evaluated":
                print(f"{chr(10) if tty else ''}test accuracy {event.get('test_accuracy'):.4f}")
            elif kind == "state":
                state = JobState(event["state"])
                print(
                    f"job {job_id}: {state}"
                    + (f", version {event['version']}" if event.get("version") else "")
                    + (f": {event['reason']}" if event.get("reason") else "")
                )
                return 0 if state is JobState.SUCCEEDED else 1
    raise AdminError(f"the event stream of job {job_id} ended before the job did (did the service stop?)")


def _progress_line(progress: dict[str, typing.Any]) -> str:
    def number(key: str) -> str:
        return "-" if progress.get(key) is None else f"{progress[key]:.4f}"

    fraction = progress.get("fraction") or 0.0
    return (
        f"[{'#' * int(fraction * 30):<30}] {fraction:6.1%} epoch {progress['epoch']}/{progress['epochs']} "
        f"loss {number('loss')} acc {number('accuracy')}"
        + (f" val_acc {number('val_accuracy')}" if progress.get("val_accuracy") is not None else "")
    )


if __name__ == "__main__":
    sys.exit(main())
