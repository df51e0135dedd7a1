"""Start the real server process (uvicorn, the real SavedModel) on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import BUNDLED_MODELS, REPO_ROOT


@dataclass
class Server:
    url: str
    models_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(models_dir: Path, log_path: Path, **env: str) -> Server:
    port = free_port()
    environment = {
        **os.environ,
        "LENET_MODELS_DIR": str(models_dir),
        "LENET_POLL_INTERVAL_S": "0.5",
        "LENET_JOBS_DIR": str(models_dir.parent / "jobs"),
        "LENET_HOST": "127.0.0.1",
        "LENET_PORT": str(port),
        **env,
    }
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(f"http://127.0.0.1:{port}", models_dir, process, log_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"server not ready after 120 s:\n{server.log()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """A server on a copy of the bundled repository, so tests may add versions to it."""
    root = tmp_path_factory.mktemp("e2e")
    models = root / "models"
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", models / "lenet5" / "1")
    server = start_server(models, root / "server.log")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def bundled_server(tmp_path_factory):
    """A server on every bundled version of lenet5 and lenet5-read, as `make serve` runs it (the README's answers)."""
    root = tmp_path_factory.mktemp("bundled")
    for name in ("lenet5", "lenet5-read"):
        shutil.copytree(BUNDLED_MODELS / name, root / "models" / name)
    server = start_server(root / "models", root / "server.log")
    yield server
    stop_server(server)


def newest_bundled_version() -> int:
    return max(int(p.name) for p in (BUNDLED_MODELS / "lenet5").iterdir() if p.name.isdigit())


def answers_to_fixtures(url: str, route: str, names: list[str]) -> list[int | str | None]:
    """The named files of tests/fixtures sent in one request to `route` ("predict" or "read") of the server at `url`:
    each image's digit (/predict) or text (/read), in order."""
    files = [
        ("image", (n, (REPO_ROOT / "tests" / "fixtures" / n).read_bytes(), "application/octet-stream")) for n in names
    ]
    response = httpx.post(f"{url}/{route}", files=files, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    return [p["digit"] for p in body["predictions"]] if route == "predict" else [r["text"] for r in body["readings"]]
