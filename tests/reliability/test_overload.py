"""Overload against the real server, briefly, relative to what this machine serves: bench/openloop.py
(the generator of bench/overload.py) first measures the capacity closed-loop (64 connections, 3 s, as
bench/overload.py's wrk), then offers twice that open-loop for 6 s with connections opened as requests
arrive. The minute-long run with its figures is `bench/overload.py`; this checks the behaviour."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest

from app.config import Settings
from tests.app.conftest import png_bytes
from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT, async_wait_until
from tests.e2e.conftest import start_server, stop_server


@pytest.fixture(scope="module")
def crowded_server(tmp_path_factory):
    """The real server with its default admission settings."""
    root = tmp_path_factory.mktemp("overload")
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", root / "models" / "lenet5" / "1")
    server = start_server(root / "models", root / "server.log", LENET_LOG_LEVEL="warning")
    yield server
    stop_server(server)


def labelled_digits(folder) -> list[str]:
    """--png PATH:DIGIT arguments: the first 20 MNIST test digits (the bundled model reads all 20 right)."""
    with np.load(FIXTURE_MNIST) as data:
        images, labels = data["x_test"][:20], data["y_test"][:20]
    specs = []
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"{i:02d}.png"
        path.write_bytes(png_bytes(image))
        specs += ["--png", f"{path}:{label}"]
    return specs


def served_503s(url: str) -> int:
    text = httpx.get(url + "/metrics").text
    return int(
        sum(
            float(v)
            for v in re.findall(r"^lenet_(?:shed_requests|rejected)_total(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
        )
    )


def openloop(server_url: str, folder, *load: str) -> dict:
    """Run bench/openloop.py against the server with `load` (--rate R or --closed-loop N, --duration S)."""
    summary_file = folder / "summary.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "openloop.py"),
            server_url.rsplit(":", 1)[1],
            *load,
            "--timeout",
            "20",
            "--out",
            str(summary_file),
            *labelled_digits(folder),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(summary_file.read_text())


def test_open_loop_overload_is_shed_with_retry_after_and_nothing_is_lost(crowded_server, tmp_path):
    measured = openloop(crowded_server.url, tmp_path, "--closed-loop", "64", "--duration", "3")
    assert set(measured["statuses"]) == {"200"} and measured["wrong_answers"] == 0, measured["statuses"]
    capacity = measured["served_rps"]
    rate, duration = round(2 * capacity), 6
    shed_before = served_503s(crowded_server.url)
    summary = openloop(crowded_server.url, tmp_path, "--rate", str(rate), "--duration", str(duration))
    figures = (
        f"capacity {capacity:g} req/s, offered {summary['offered_rps']} (target {rate}), served "
        f"{summary['served_rps']}, shed {summary['shed_rps']}, statuses {summary['statuses']}; served p50 "
        f"{summary['served_p50_ms']} ms, max {summary['served_max_ms']} ms, shed p50 {summary['shed_p50_ms']} "
        f"ms, p99 {summary['shed_p99_ms']} ms; first 200 {summary['recovery_first_200_after_load_s']} s after"
    )
    print(figures)

    # Twice the capacity was really offered. If not: a generator lagging its schedule means CPUs too busy to
    # test overload; one on time means requests waited for connections the server did not accept.
    assert summary["offered_rps"] >= 0.9 * rate, f"generator lag p99 {summary['generator_lag_p99_ms']} ms; {figures}"
    assert summary["lost"] == 0 and summary["recovery_probes"]["lost"] == 0, summary["lost_detail"]
    # Both answers occur: the load was really past the limit, and admitted requests were still served.
    assert set(summary["statuses"]) == {"200", "503"}, figures
    assert summary["shed_without_retry_after"] == 0
    assert summary["wrong_answers"] == 0
    # The served rate holds under twice the load it can serve: no collapse into shedding or timeouts. Each
    # 503 still costs the server about a third of an answer (a parsed request and a response), so it served
    # 0.55-0.9x the capacity on two cores shared with the generator. Other processes taking the server's CPU
    # after the measurement raise the real overload and lower this (0.2-0.3x at load average 6 on two cores).
    assert summary["served_rps"] >= 0.3 * capacity, figures
    # No connection starved, and 503s come fast. Admission keeps at most `inflight` requests in the
    # server, so a served answer waits about inflight / capacity (0.2 s here); with uvloop, which accepts
    # one connection per loop iteration (LENET_LOOP in app/config.py), new connections sat in the listen
    # queue until the load stopped: 8.7 s, and up to 30 s in the minute-long benchmark.
    inflight = Settings.model_fields["max_inflight_requests"].default
    bound_ms = 1000 * (2 + 4 * inflight / capacity)  # 3 s here
    assert summary["served_max_ms"] < bound_ms and summary["shed_p99_ms"] < bound_ms, (bound_ms, figures)
    # Turned away at once, not after queueing: most 503s come within the time to serve what admission lets in.
    assert summary["shed_p50_ms"] < 1000 * (0.5 + inflight / capacity), figures
    # Every 503 the server gave, the client received, and no other.
    shed_client = summary["statuses"]["503"] + summary["recovery_probes"]["shed"]
    assert served_503s(crowded_server.url) - shed_before == shed_client
    # Once the load stops the server serves normally, within a second and the drain of what it admitted.
    assert summary["recovery_probes"]["served"] > 0
    assert summary["recovery_first_200_after_load_s"] <= 1 + inflight / capacity, figures
    assert httpx.get(crowded_server.url + "/readyz").status_code == 200
    with np.load(FIXTURE_MNIST) as data:
        image, label = data["x_test"][0], int(data["y_test"][0])
    answer = httpx.post(crowded_server.url + "/predict", files={"image": ("d.png", png_bytes(image), "image/png")})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["digit"] == label


def load_openloop():
    spec = importlib.util.spec_from_file_location("openloop", REPO_ROOT / "bench" / "openloop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class FakeHTTP:
    """A local HTTP/1.1 server answering every request 200 after `delay` seconds; it records the connections
    it accepted and saw closed, and the most requests it was answering at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay, self.accepted, self.closed, self.busy, self.peak_busy = delay, 0, 0, 0, 0

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))
                self.busy += 1
                self.peak_busy = max(self.peak_busy, self.busy)
                if self.delay:
                    await asyncio.sleep(self.delay)  # the behaviour under test: a server taking its time
                self.busy -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except asyncio.IncompleteReadError:  # the generator closed it
            writer.close()
            self.closed += 1

    async def run(self, make_generator):
        """Run the generator `make_generator(port)` against this server; its outcomes once every connection closed."""
        server = await asyncio.start_server(self.answer, "127.0.0.1", 0)
        gen = make_generator(server.sockets[0].getsockname()[1])
        outcomes = await gen.run()
        await async_wait_until(
            lambda: self.closed == self.accepted,
            5,
            lambda: f"the server saw {self.closed} of {self.accepted} connections closed",
        )
        server.close()
        await server.wait_closed()
        return gen, outcomes


@pytest.mark.parametrize("idle_timeout, connections", [(10.0, 1), (0.1, 4)])
def test_generator_drops_connections_idle_past_its_timeout(idle_timeout, connections):
    """A request written as the server closes an idle keep-alive connection is reset, so the generator
    must not reuse a connection idle longer than --idle-timeout (kept below the server's keep-alive)."""
    openloop = load_openloop()

    def generator(port):
        gen = openloop.OpenLoop(
            port,
            [openloop.predict_png(b"png", None)],
            rate=1,
            duration=1,
            idle_timeout=idle_timeout,
            timeout=5,
            probe_for=0,
        )
        gen.schedule = [0.0, 0.3, 0.6, 0.9]  # answered at once, so 0.3 s idle before each reuse
        return gen

    fake = FakeHTTP()
    _, outcomes = asyncio.run(fake.run(generator))
    assert [o.status for o in outcomes] == [200] * 4
    assert fake.accepted == connections


def test_closed_loop_keeps_n_requests_outstanding_and_sends_again_on_each_answer():
    """The capacity measurement the overload test offers twice of: N clients, each one request at a time."""
    openloop = load_openloop()
    fake = FakeHTTP(delay=0.01)
    gen, outcomes = asyncio.run(
        fake.run(
            lambda port: openloop.ClosedLoop(
                port, [openloop.predict_png(b"png", None)], connections=3, duration=0.5, timeout=5
            )
        )
    )
    summary = openloop.summarize(gen, outcomes)
    assert fake.accepted == 3 and fake.peak_busy == 3, (fake.accepted, fake.peak_busy)
    assert summary["statuses"] == {"200": summary["requests"]} and summary["lost"] == 0
    # Each client sent again on each answer (about 50 each), never two at a time (so at most 300/s).
    assert summary["requests"] >= 30 and summary["served_rps"] <= 3 / 0.01, summary


@pytest.fixture(scope="module")
def reading_server(tmp_path_factory):
    """The real server with the bundled reading model, two readers at once and two more waiting at most."""
    root = tmp_path_factory.mktemp("reading-overload")
    for name, version in (("lenet5", 1), ("lenet5-read", 6)):
        shutil.copytree(BUNDLED_MODELS / name / str(version), root / "models" / name / str(version))
    server = start_server(
        root / "models", root / "server.log", LENET_LOG_LEVEL="warning", LENET_READ_SLOTS="2", LENET_MAX_READ_QUEUE="2"
    )
    yield server
    stop_server(server)


def test_reading_overload_is_turned_away_at_once_not_answered_late(reading_server, tmp_path):
    # An outside check: /read offered twice what it reads queued every request (up to the 256 in flight) and answered
    # them after up to 27 s, past LENET_REQUEST_TIMEOUT_S, turning none away. Now at most LENET_READ_SLOTS read at once
    # and LENET_MAX_READ_QUEUE wait: the rest get 503 at once, and an answer waits about (2 + 2) / capacity.
    number = ["--read", "--png", f"{REPO_ROOT / 'examples' / 'number.png'}:4021"]
    port = reading_server.url.rsplit(":", 1)[1]
    closed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "openloop.py"), port, "--closed-loop", "2", "--duration", "3"]
        + ["--out", str(tmp_path / "closed.json"), *number],
        check=True,
        capture_output=True,
        timeout=120,
    )
    measured = json.loads((tmp_path / "closed.json").read_text())
    assert set(measured["statuses"]) == {"200"} and measured["wrong_answers"] == 0, closed.stdout
    capacity = measured["served_rps"]
    rate = max(4, round(2 * capacity))
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "openloop.py"), port, "--rate", str(rate), "--duration", "6"]
        + ["--timeout", "30", "--out", str(tmp_path / "open.json"), *number],
        check=True,
        capture_output=True,
        timeout=120,
    )
    summary = json.loads((tmp_path / "open.json").read_text())
    figures = (
        f"capacity {capacity:g} readings/s, offered {summary['offered_rps']} (target {rate}), served "
        f"{summary['served_rps']}, statuses {summary['statuses']}; served p50 {summary['served_p50_ms']} ms, max "
        f"{summary['served_max_ms']} ms, shed p50 {summary['shed_p50_ms']} ms"
    )
    print(figures)
    assert set(summary["statuses"]) == {"200", "503"}, figures  # turned away, not timed out (504) or lost
    assert summary["lost"] == 0 and summary["wrong_answers"] == 0 and summary["shed_without_retry_after"] == 0
    # Queued without a bound, a served answer waited for the whole backlog: 6 s of twice the capacity, 3 s or more.
    assert summary["served_max_ms"] < 1000 * (0.5 + 2 * 4 / capacity), figures
    assert summary["shed_p50_ms"] < 250, figures  # at once
    metrics = httpx.get(reading_server.url + "/metrics").text
    assert (
        float(re.search(r"^lenet_reads_shed_total (\S+)$", metrics, re.MULTILINE).group(1))
        >= summary["statuses"]["503"]
    )
