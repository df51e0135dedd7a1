"""Overload against the real server, briefly: 5,000 requests/s offered open-loop for 8 s by
bench/openloop.py (the generator of bench/overload.py), about twice what this machine serves, with
connections opened as requests arrive. The minute-long run at twice the measured capacity, with its
figures, is `bench/overload.py`; this checks the behaviour."""
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

from tests.app.conftest import png_bytes
from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT
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
    return int(sum(float(v) for v in re.findall(r"^lenet_(?:shed_requests|rejected)_total(?:\{[^}]*\})? (\S+)$",
                                                text, re.M)))


def test_open_loop_overload_is_shed_with_retry_after_and_nothing_is_lost(crowded_server, tmp_path):
    port = crowded_server.url.rsplit(":", 1)[1]
    summary_file = tmp_path / "summary.json"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "openloop.py"), port, "--rate", "5000",
                           "--duration", "8", "--timeout", "20", "--out", str(summary_file),
                           *labelled_digits(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(summary_file.read_text())

    assert summary["requests"] > 35_000 and summary["lost"] == 0 and summary["recovery_probes"]["lost"] == 0
    # Both answers occur: the load was really past the limit, and admitted requests were still served.
    assert set(summary["statuses"]) == {"200", "503"}, summary["statuses"]
    assert summary["shed_without_retry_after"] == 0
    assert summary["wrong_answers"] == 0
    # No connection starved. Admission keeps answers near 0.2 s here; with uvloop, which accepts one
    # connection per loop iteration (LENET_LOOP in app/config.py), new connections sat in the listen
    # queue until the load stopped: 8.7 s, and up to 30 s in the minute-long benchmark.
    assert summary["served_max_ms"] < 3000 and summary["shed_p99_ms"] < 3000
    # Every 503 the server gave, the client received, and no other.
    assert served_503s(crowded_server.url) == summary["statuses"]["503"] + summary["recovery_probes"]["shed"]
    # Once the load stops the server serves normally.
    assert summary["recovery_probes"]["served"] > 0
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


@pytest.mark.parametrize("idle_timeout, connections", [(10.0, 1), (0.1, 4)])
def test_generator_drops_connections_idle_past_its_timeout(idle_timeout, connections):
    """A request written as the server closes an idle keep-alive connection is reset, so the generator
    must not reuse a connection idle longer than --idle-timeout (kept below the server's keep-alive)."""
    openloop = load_openloop()
    accepted = []

    async def answer(reader, writer):
        accepted.append(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except asyncio.IncompleteReadError:  # the generator closed it
            writer.close()

    async def run():
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        gen = openloop.OpenLoop(server.sockets[0].getsockname()[1], [openloop.predict_png(b"png", None)], rate=1,
                                duration=1, idle_timeout=idle_timeout, timeout=5, probe_for=0)
        gen.schedule = [0.0, 0.3, 0.6, 0.9]  # answered at once, so 0.3 s idle before each reuse
        outcomes = await gen.run()
        await asyncio.sleep(0.1)  # the server sees every connection closed
        server.close()
        await server.wait_closed()
        return outcomes

    outcomes = asyncio.run(run())
    assert [o.status for o in outcomes] == [200] * 4
    assert len(accepted) == connections
