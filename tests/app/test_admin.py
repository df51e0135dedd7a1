"""The operators' command line (`python -m app.admin`), run as a subprocess against a real HTTP server
(uvicorn in a thread; the model behind it is a fake, training jobs run the real training CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from app.config import Settings
from app.main import create_app
from tests.app.conftest import FakeLoader, add_version
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import free_port

TOKEN = "admin-cli-token"


def serve(settings: Settings) -> tuple[str, uvicorn.Server, threading.Thread]:
    add_version(settings.models_dir, "lenet5", 1)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, FakeLoader()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def urls(tmp_path_factory) -> Iterator[dict[str, str]]:
    """`admin`: a service with a token (its jobs fail: its MNIST path is missing); `disabled`: one without."""
    running = {}
    for kind, token in (("admin", TOKEN), ("disabled", None)):
        root = tmp_path_factory.mktemp(kind)
        running[kind] = serve(
            Settings(
                models_dir=root / "models",
                jobs_dir=root / "jobs",
                warmup_batches=0,
                mnist_path=root / "missing.npz",
                admin_token=token,
            )
        )
    yield {kind: url for kind, (url, _, _) in running.items()}
    for _, server, thread in running.values():
        server.should_exit = True
        thread.join(30)


def admin(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LENET_ADMIN_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "app.admin", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    "where,args,says",
    [
        pytest.param("refused", ["--token", TOKEN, "jobs"], "cannot connect", id="connection-refused"),
        pytest.param("admin", ["jobs"], "LENET_ADMIN_TOKEN", id="missing-token"),
        pytest.param("admin", ["--token", "wrong", "jobs"], "401 unauthorized", id="wrong-token"),
        pytest.param("disabled", ["--token", TOKEN, "jobs"], "403", id="admin-disabled"),
        pytest.param("no-scheme", ["--token", TOKEN, "jobs"], "--url", id="url-without-scheme"),
        pytest.param("admin", ["--token", TOKEN, "show", "no-such-job"], "404", id="unknown-job"),
    ],
)
def test_errors_are_one_clear_line_and_a_non_zero_status(urls, where, args, says):
    url = {"refused": f"http://127.0.0.1:{free_port()}", "no-scheme": "127.0.0.1:8000"}.get(where) or urls[where]
    done = admin("--url", url, *args)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert says in done.stderr, done.stderr


def test_follow_prints_why_a_job_failed(urls):
    done = admin("--url", urls["admin"], "--token", TOKEN, "train", "--epochs", "1", "--train-limit", "200", "--follow")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stdout and "missing.npz: no such file" in done.stdout, done.stdout
