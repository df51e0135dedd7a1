"""Open-loop HTTP/1.1 load: requests leave on a fixed schedule (Poisson arrivals at --rate for
--duration seconds) whether or not earlier ones were answered, so a server that falls behind cannot
slow the offered load down. Closed-loop tools (wrk, hey) wait for an answer before sending again,
which hides overload ("coordinated omission"). Latency counts from each request's scheduled time.

Requests go out on keep-alive connections; when none is free a new one is opened (up to
--max-connections, past which requests wait in the client and that wait counts as latency). A
connection idle for --idle-timeout is closed rather than reused: the server closes idle ones after
its keep-alive timeout, and a request written just as it does is reset (RFC 9112 9.3.1), so clients
keep their idle timeout below the server's. After the schedule, probes go out every --probe-every
seconds for --probe-for seconds to time recovery.
With --closed-loop N it is a closed loop instead (as wrk): N connections, each sending its next request
as soon as its answer arrives, for --duration seconds; what it serves at that concurrency sets an
open-loop rate relative to this machine (tests/reliability/test_overload.py, bench/overload.py's wrk).
Every request gets an outcome: an HTTP status, or 0 when no answer came (connection error, or no
answer within --timeout). Traffic only to 127.0.0.1.

usage: python bench/openloop.py PORT --rate 4000 --duration 60 --png examples/digit.png:7 [--out F]
       python bench/openloop.py PORT --rate 20 --duration 30 --read --png examples/number.png:4021
       python bench/openloop.py PORT --closed-loop 64 --duration 3 --png examples/digit.png:7 [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BOUNDARY = "openloopbench"


@dataclass(frozen=True)
class Payload:
    raw: bytes  # the whole HTTP/1.1 request
    expect: bytes | None  # a fragment every 200 answer must contain, e.g. b'"digit":7,'


def predict_png(png: bytes, digit: int | None) -> Payload:
    """A PNG uploaded to /predict as a browser or curl uploads it; a 200 answer must name `digit`."""
    return upload_png(png, None if digit is None else f'"digit":{digit},'.encode(), "/predict")


def read_png(png: bytes, text: str | None) -> Payload:
    """A PNG of a number uploaded to /read; a 200 answer must read it as `text`."""
    return upload_png(png, None if text is None else f'"text":"{text}",'.encode(), "/read")


def upload_png(png: bytes, expect: bytes | None, path: str) -> Payload:
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return Payload(head + body, expect)


@dataclass
class Outcome:
    scheduled: float  # seconds after the start of the load
    sent: float = float("nan")  # when it was written to a connection
    done: float = float("nan")  # when its answer was complete
    status: int = 0  # 0: no answer
    retry_after: bool = False
    correct: bool | None = None  # for 200 answers with an expectation
    error: str | None = None
    probe: bool = False
    reused_after: float = float("nan")  # seconds its connection had been idle before it; NaN: a new connection

    @property
    def latency(self) -> float:
        return self.done - self.scheduled

    @property
    def finished(self) -> bool:
        """Answered, or given up on (the error says why)."""
        return self.status != 0 or self.error is not None


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; parses just enough of each answer."""

    def __init__(self, gen: OpenLoop) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: tuple[Outcome, Payload] | None = None
        self.head: tuple[int, int, int, bool, bool] | None = None  # status, body start, end, chunked, retry-after
        self.idle_since: float | None = None  # None until it has carried an answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, outcome: Outcome, payload: Payload) -> None:
        self.current = (outcome, payload)
        self.gen.busy.add(self)
        outcome.sent = self.gen.now()
        if self.idle_since is not None:
            outcome.reused_after = outcome.sent - self.idle_since
        self.transport.write(payload.raw)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.current is not None:
            if self.head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(self.buffer[:end]).lower().split(b"\r\n")
                status = int(lines[0].split()[1])
                length, chunked, retry_after = 0, False, False
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding" and b"chunked" in value:
                        chunked = True
                    elif name == b"retry-after":
                        retry_after = True
                self.head = (status, end + 4, end + 4 + length, chunked, retry_after)
            status, body_start, body_end, chunked, retry_after = self.head
            if chunked:  # enough to find the last chunk; the body is then kept with its chunk sizes
                last = self.buffer.find(b"0\r\n\r\n", body_start)
                if last < 0:
                    return
                body_end = last + 5
            if len(self.buffer) < body_end:
                return
            body = bytes(self.buffer[body_start:body_end])
            del self.buffer[:body_end]
            self.head = None
            outcome, payload = self.current
            self.current = None
            self.gen.busy.discard(self)
            outcome.done = self.idle_since = self.gen.now()
            outcome.status, outcome.retry_after = status, retry_after
            if status == 200 and payload.expect is not None:
                outcome.correct = payload.expect in body
            self.gen.released(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self, exc)


class OpenLoop:
    def __init__(
        self,
        port: int,
        payloads: list[Payload],
        rate: float,
        duration: float,
        *,
        max_connections: int = 4096,
        idle_timeout: float = 4.0,
        timeout: float = 30.0,
        probe_every: float = 0.02,
        probe_for: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.port, self.payloads = port, payloads
        self.max_connections, self.idle_timeout, self.timeout = max_connections, idle_timeout, timeout
        rng = np.random.default_rng(seed)
        gaps = rng.exponential(1.0 / rate, int(rate * duration * 1.1) + 10)
        times = np.cumsum(gaps)
        self.schedule = times[times < duration].tolist()
        self.duration = duration
        self.probes = np.arange(duration, duration + probe_for, probe_every).tolist()
        self.outcomes: list[Outcome] = []
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.waiting: deque[tuple[Outcome, Payload]] = deque()
        self.open = 0  # connections open or opening
        self.peak_open = 0
        self.peak_waiting = 0
        self.lag: list[float] = []  # how late the generator itself sent a request
        self._t0 = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        return self._loop.time() - self._t0  # type: ignore[union-attr]

    async def preopen(self, n: int) -> None:
        """Open `n` idle connections before the load starts, as wrk2 does (no connection storm)."""
        self._loop = asyncio.get_running_loop()
        for start in range(0, n, 256):
            conns = await asyncio.gather(
                *(
                    self._loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
                    for _ in range(start, min(n, start + 256))
                )
            )
            self.idle.extend(conn for _, conn in conns)
        self.open = self.peak_open = len(self.idle)

    async def run(self, preopen: int = 0) -> list[Outcome]:
        if preopen:
            await self.preopen(preopen)
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time() + 0.05
        reaper = asyncio.create_task(self._reap())
        plan = [(t, False) for t in self.schedule] + [(t, True) for t in self.probes]
        for index, (at, probe) in enumerate(plan):
            delay = at - self.now()
            if delay > 0.0005:  # sleep only when worth it; requests due together leave together
                await asyncio.sleep(delay)
            elif index % 32 == 0:  # running late: still let answers in, so they are timed fairly
                await asyncio.sleep(0)
            outcome = Outcome(scheduled=at, probe=probe)
            self.outcomes.append(outcome)
            self.lag.append(max(0.0, self.now() - at))
            self._dispatch(outcome, self.payloads[index % len(self.payloads)])
        return await self._finish(reaper)

    async def _finish(self, reaper: asyncio.Task[None]) -> list[Outcome]:
        """Wait for the answers still due (up to `timeout`), give the rest up as lost, close the connections."""
        deadline = self.now() + self.timeout + 1
        pending = [o for o in self.outcomes if not o.finished]
        while pending and self.now() < deadline:
            await asyncio.sleep(0.1)
            pending = [o for o in pending if not o.finished]
        reaper.cancel()
        for outcome in pending:
            outcome.error = "no answer"
        for conn in self.idle:
            conn.transport.close()  # type: ignore[union-attr]
        return self.outcomes

    def _dispatch(self, outcome: Outcome, payload: Payload) -> None:
        while self.idle:  # the most recently used first, so the others age and are dropped here
            conn = self.idle.pop()
            if conn.idle_since is None or self.now() - conn.idle_since < self.idle_timeout:
                conn.send(outcome, payload)
                return
            conn.transport.close()  # the server may be closing it at this moment: a request written now is lost
        if self.open < self.max_connections:
            self.open += 1
            self.peak_open = max(self.peak_open, self.open)
            asyncio.ensure_future(self._connect(outcome, payload))
        else:
            self.waiting.append((outcome, payload))
            self.peak_waiting = max(self.peak_waiting, len(self.waiting))

    async def _connect(self, outcome: Outcome, payload: Payload) -> None:
        try:
            _, conn = await self._loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
        except OSError as exc:
            self.open -= 1
            outcome.error = f"connect: {exc.__class__.__name__}"
            return
        conn.send(outcome, payload)

    def released(self, conn: _Connection) -> None:
        if self.waiting:
            conn.send(*self.waiting.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: _Connection, exc: Exception | None) -> None:
        self.open -= 1
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.current is not None:
            outcome = conn.current[0]
            if outcome.error is None:
                outcome.error = f"connection lost: {exc.__class__.__name__ if exc else 'closed by server'}"
            conn.current = None

    async def _reap(self) -> None:
        """Abandon requests unanswered after `timeout` (counted as lost) and free their connections."""
        while True:
            await asyncio.sleep(0.5)
            now = self.now()
            for outcome, _ in list(self.waiting):
                if now - outcome.scheduled > self.timeout:
                    outcome.error = "timed out waiting for a client connection"
            self.waiting = deque(w for w in self.waiting if w[0].error is None)
            for conn in list(self.busy):
                if conn.current and now - conn.current[0].scheduled > self.timeout:
                    conn.current[0].error = f"no answer within {self.timeout:g} s"
                    conn.transport.abort()  # type: ignore[union-attr]


class ClosedLoop(OpenLoop):
    """`connections` clients, each sending its next request as soon as its answer arrives (wrk's model),
    for `duration` seconds. Latency counts from each request's sending; `duration` becomes the time of the
    last answer, so served_rps is what the server answered in the time it took."""

    def __init__(
        self, port: int, payloads: list[Payload], connections: int, duration: float, *, timeout: float = 30.0
    ) -> None:
        super().__init__(
            port, payloads, rate=1, duration=duration, max_connections=connections, timeout=timeout, probe_for=0
        )
        self.schedule, self.connections = [], connections

    async def run(self, preopen: int = 0) -> list[Outcome]:
        await self.preopen(self.connections)
        self._t0 = self._loop.time()  # type: ignore[union-attr]
        reaper = asyncio.create_task(self._reap())
        while self.idle:
            self._next(self.idle.pop())
        await asyncio.sleep(self.duration)
        outcomes = await self._finish(reaper)
        self.duration = max((o.done for o in outcomes if o.status), default=self.duration)
        return outcomes

    def _next(self, conn: _Connection) -> None:
        outcome = Outcome(scheduled=self.now())
        self.outcomes.append(outcome)
        conn.send(outcome, self.payloads[len(self.outcomes) % len(self.payloads)])

    def released(self, conn: _Connection) -> None:
        if self.now() < self.duration:
            self._next(conn)
        else:
            self.idle.append(conn)


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def summarize(gen: OpenLoop, outcomes: list[Outcome]) -> dict:
    """Offered and served rates, statuses, latency of the answered, lost and wrong answers, recovery."""
    load = [o for o in outcomes if not o.probe]
    probes = [o for o in outcomes if o.probe]
    statuses: dict[str, int] = {}
    for o in load:
        key = str(o.status) if o.status else (o.error or "no answer")
        statuses[key] = statuses.get(key, 0) + 1
    ok = [o for o in load if o.status == 200]
    shed = [o for o in load if o.status == 503]
    answered = [o for o in load if o.status]
    sent = [o.sent for o in load if not math.isnan(o.sent)]  # NaN: never written to a connection
    windows = []
    for start in range(0, int(np.ceil(gen.duration)), 10):  # p99 by 10 s window: bounded means flat
        inside = [o.latency for o in ok if start <= o.scheduled < start + 10]
        windows.append({"from_s": start, "served": len(inside), "p99_ms": _ms(inside, 99)})
    first_ok = next((o for o in sorted(probes, key=lambda o: o.done) if o.status == 200), None)
    late_probes = [o.latency for o in probes if o.status == 200 and o.scheduled >= gen.duration + 1.0]
    return {
        "offered_target_rps": round(len(load) / gen.duration, 1),
        "offered_rps": round(len(sent) / (max(sent) - min(sent)), 1) if len(sent) > 1 else None,
        "served_rps": round(len(ok) / gen.duration, 1),
        "shed_rps": round(len(shed) / gen.duration, 1),
        "requests": len(load),
        "statuses": statuses,
        "lost": sum(1 for o in load if not o.status),
        "lost_detail": [
            {
                "error": o.error,
                "scheduled_s": round(o.scheduled, 3),
                "connection": "new" if math.isnan(o.reused_after) else f"reused after {o.reused_after:.3f} s idle",
            }
            for o in load
            if not o.status
        ][:20],
        "wrong_answers": sum(1 for o in ok if o.correct is False),
        "shed_without_retry_after": sum(1 for o in shed if not o.retry_after),
        "served_p50_ms": _ms([o.latency for o in ok], 50),
        "served_p99_ms": _ms([o.latency for o in ok], 99),
        "served_max_ms": _ms([o.latency for o in ok], 100),
        "shed_p50_ms": _ms([o.latency for o in shed], 50),
        "shed_p99_ms": _ms([o.latency for o in shed], 99),
        "answered_p99_ms": _ms([o.latency for o in answered], 99),
        "served_p99_by_10s": windows,
        "generator_lag_p99_ms": _ms(gen.lag[: len(load)], 99),
        "peak_connections": gen.peak_open,
        "peak_waiting_in_client": gen.peak_waiting,
        "recovery_first_200_after_load_s": round(first_ok.done - gen.duration, 3) if first_ok else None,
        "recovery_probes": {
            "sent": len(probes),
            "served": sum(o.status == 200 for o in probes),
            "shed": sum(o.status == 503 for o in probes),
            "lost": sum(not o.status for o in probes),
            "p99_ms_from_1s_after": _ms(late_probes, 99),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int, help="the server's port on 127.0.0.1")
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--rate", type=float, help="offered requests per second (open loop)")
    load.add_argument(
        "--closed-loop",
        type=int,
        metavar="N",
        help="instead: N connections, each sending again as soon as answered (measures capacity)",
    )
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument(
        "--png",
        action="append",
        required=True,
        help="PATH[:DIGIT]: a PNG to upload to /predict and the digit every 200 must name (with --read, PATH[:TEXT]: "
        "a number's PNG and what every 200 must read); repeatable",
    )
    parser.add_argument("--read", action="store_true", help="upload to POST /read rather than /predict")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=4096,
        help="connections at most; requests wait in the client past it (that wait counts)",
    )
    parser.add_argument("--preopen", type=int, default=0, help="connections opened before the load starts")
    parser.add_argument("--raw", type=Path, help="write every outcome here (.npz) for a closer look")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=4.0,
        help="a connection idle this long is closed rather than reused; keep it below the server's "
        "keep-alive timeout (uvicorn's 5 s), as HTTP clients do",
    )
    parser.add_argument("--timeout", type=float, default=30, help="an answer later than this counts as lost")
    parser.add_argument("--probe-every", type=float, default=0.02)
    parser.add_argument("--probe-for", type=float, default=2.0)
    parser.add_argument("--out", type=Path, help="write the summary here as JSON (also printed)")
    args = parser.parse_args()
    payloads = []
    for spec in args.png:
        path, _, label = spec.partition(":")
        png = Path(path).read_bytes()
        payloads.append(read_png(png, label or None) if args.read else predict_png(png, int(label) if label else None))
    if args.closed_loop:
        gen: OpenLoop = ClosedLoop(args.port, payloads, args.closed_loop, args.duration, timeout=args.timeout)
    else:
        gen = OpenLoop(
            args.port,
            payloads,
            args.rate,
            args.duration,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout,
            timeout=args.timeout,
            probe_every=args.probe_every,
            probe_for=args.probe_for,
        )
    try:
        import uvloop  # the generator must not be the bottleneck; uvloop halves its cost per request

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    started = time.monotonic()
    outcomes = runner(gen.run(args.preopen))
    if args.raw:
        np.savez_compressed(
            args.raw,
            **{
                name: np.array([getattr(o, name) for o in outcomes])
                for name in ("scheduled", "sent", "done", "status", "probe")
            },
        )
    summary = {**summarize(gen, outcomes), "wall_s": round(time.monotonic() - started, 1)}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
