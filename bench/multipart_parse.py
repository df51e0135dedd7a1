"""Per-request cost of parsing a multipart/form-data body: the service's path (app.payloads.multipart_files:
the `multipart` package plus the strictness checks and limits of app/formdata.py), python-multipart's parser,
and Starlette's request.form(), on a one-PNG body and a 64-file body. Every figure is also given as a ratio
to the bare `multipart` push parser measured in the same run, so that runs on different machines compare.
Run it alone (not beside tests): it is single-threaded and timing-sensitive.

    .venv/bin/python bench/multipart_parse.py [--repeat 7] [--seconds 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import multipart
from python_multipart import MultipartParser
from starlette.datastructures import UploadFile
from starlette.requests import Request

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # runnable as a plain script from any folder

from app.payloads import multipart_files

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"  # what a browser sends
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form_body(files: int) -> bytes:
    png = (REPO_ROOT / "examples" / "digit.png").read_bytes()
    part = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + b"\r\n"
    )
    return part * files + f"--{BOUNDARY}--\r\n".encode()


def bare_multipart(body: bytes) -> list[bytes]:
    """The baseline: the `multipart` push parser alone, collecting each part's content."""
    out: list[bytes] = []
    with multipart.PushMultipartParser(BOUNDARY) as parser:
        for event in parser.parse(body):
            if isinstance(event, bytes):
                out.append(event)
    return out


def service_path(body: bytes) -> list[tuple[str | None, bytes]]:
    return multipart_files(body, CONTENT_TYPE, "image", 1024)


def python_multipart(body: bytes) -> list[bytes]:
    """python-multipart's streaming parser with the callbacks a caller needs for names and contents."""
    parts: list[bytearray] = []
    headers: list[bytes] = []
    callbacks = {
        "on_part_begin": lambda: parts.append(bytearray()),
        "on_header_value": lambda data, start, end: headers.append(data[start:end]),
        "on_part_data": lambda data, start, end: parts[-1].extend(data[start:end]),
    }
    parser = MultipartParser(BOUNDARY, callbacks)  # type: ignore[arg-type]
    parser.write(body)
    parser.finalize()
    return [bytes(part) for part in parts]


async def starlette_form(body: bytes, times: int) -> None:
    headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    for _ in range(times):

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        request = Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive)
        form = await request.form()
        for upload in form.getlist("image"):
            assert isinstance(upload, UploadFile)
            await upload.read()
        await form.close()


def calibrate(run: Callable[[int], None], seconds: float) -> int:
    """How many calls make one timing last about `seconds`."""
    times = 1
    while True:
        start = time.perf_counter()
        run(times)
        if (elapsed := time.perf_counter() - start) >= seconds / 4:
            return max(1, int(times * seconds / elapsed))
        times *= 4


def best_us(runs: dict[str, Callable[[int], None]], repeat: int, seconds: float) -> dict[str, float]:
    """Microseconds per call, best of `repeat`; the paths take turns, so a burst of load elsewhere on the
    machine spreads over all of them instead of landing on one."""
    sizes = {name: calibrate(run, seconds) for name, run in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run(sizes[name])
            best[name] = min(best[name], (time.perf_counter() - start) / sizes[name] * 1e6)
    return best


def calls(parse: Callable[[bytes], object], body: bytes) -> Callable[[int], None]:
    def run(times: int) -> None:
        for _ in range(times):
            parse(body)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timings per figure; the best is kept")
    parser.add_argument("--seconds", type=float, default=0.2, help="length of one timing")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    print(
        f"Python {sys.version.split()[0]}, multipart {multipart.__version__}, best of {args.repeat}; "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    print("| body | path | us per request | x bare multipart |")
    print("|---|---|---:|---:|")
    for label, files in (("one PNG", 1), ("64 PNGs", 64)):
        body = form_body(files)
        assert len(service_path(body)) == len(bare_multipart(body)) == len(python_multipart(body)) == files

        def form(times: int, body: bytes = body) -> None:
            loop.run_until_complete(starlette_form(body, times))

        results = best_us(
            {
                "bare `multipart` push parser (baseline)": calls(bare_multipart, body),
                "service path (multipart + checks + limits)": calls(service_path, body),
                "python-multipart parser": calls(python_multipart, body),
                "Starlette request.form()": form,
            },
            args.repeat,
            args.seconds,
        )
        baseline = next(iter(results.values()))
        for name, us in results.items():
            print(f"| {label} ({len(body):,} B) | {name} | {us:,.1f} | {us / baseline:.2f} |")
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
