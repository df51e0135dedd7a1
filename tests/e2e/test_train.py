"""/train against the real server process: a real job, the gate, a killed job, predictions throughout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import httpx
import pytest

from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT, wait_until
from tests.e2e.conftest import start_server, stop_server

TOKEN = "e2e-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = (REPO_ROOT / "examples" / "digit.png").read_bytes()


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-train")
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", root / "models" / "lenet5" / "1")
    server = start_server(
        root / "models", root / "server.log", LENET_ADMIN_TOKEN=TOKEN, LENET_MNIST_PATH=str(FIXTURE_MNIST)
    )
    yield server
    stop_server(server)
    assert TOKEN not in server.log()  # the secret never reaches the log


def wait_for_job(server, job_id: str, states=("succeeded", "failed", "rejected", "cancelled"), timeout=240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/train/{job_id}", headers=AUTH).json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is {job['state']}: {job['log_tail']}")


class Predictor:
    """Clients sending /predict without pause; records every status and version."""

    def __init__(self, server, clients: int = 3) -> None:
        self.server, self.answers, self.stop = server, [], threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                r = http.post(f"{self.server.url}/predict", files={"image": ("d.png", PNG, "image/png")})
                body = r.json()
                self.answers.append(
                    (r.status_code, body.get("model", {}).get("version"), body.get("predictions", [{}])[0].get("digit"))
                )

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def serving_version(server) -> int:
    return httpx.get(f"{server.url}/readyz").json()["models"]["lenet5"]


def version_folders(server) -> list[str]:
    return sorted(p.name for p in (server.models_dir / "lenet5").iterdir() if p.name.isdigit())


def test_a_real_job_promotes_a_version_while_predictions_keep_succeeding(admin_server):
    before = serving_version(admin_server)
    with Predictor(admin_server) as predictor:
        response = httpx.post(
            f"{admin_server.url}/train", headers=AUTH, json={"epochs": 2, "train_limit": 1000, "promote": "force"}
        )
        assert response.status_code == 202, response.text
        job = wait_for_job(admin_server, response.json()["job_id"])
        assert job["state"] == "succeeded" and job["version"] == before + 1, job
        wait_until(lambda: serving_version(admin_server) == before + 1, 30, "the swap", interval=0.1)
        wait_until(
            lambda: any(version == before + 1 for _, version, _ in predictor.answers),
            30,
            "an answer by it",
            interval=0.1,
        )
    statuses = {status for status, _, _ in predictor.answers}
    assert statuses == {200}, statuses  # not one request failed during training and the swap
    assert {version for _, version, _ in predictor.answers} == {before, before + 1}
    meta = {v["version"]: v for v in httpx.get(f"{admin_server.url}/models").json()["models"][0]["versions"]}
    assert meta[before + 1]["state"] == "serving"


def test_the_gate_refuses_a_worse_candidate(admin_server):
    before = version_folders(admin_server)
    response = httpx.post(
        f"{admin_server.url}/train", headers=AUTH, json={"epochs": 1, "train_limit": 300, "promote": "auto"}
    )
    job = wait_for_job(admin_server, response.json()["job_id"])
    assert job["state"] == "rejected", job
    assert job["gate_accuracy"] is not None and job["test_accuracy"] < job["gate_accuracy"]
    assert job["version"] is None
    candidate = json.loads((Path(job["candidate"]) / "metadata.json").read_text())
    assert candidate["rejected"] is True
    assert version_folders(admin_server) == before


def test_a_killed_training_process_fails_the_job_and_changes_nothing(admin_server):
    before, folders = serving_version(admin_server), version_folders(admin_server)
    response = httpx.post(
        f"{admin_server.url}/train", headers=AUTH, json={"epochs": 50, "train_limit": 1000, "promote": "force"}
    )
    job_id = response.json()["job_id"]
    wait_until(
        lambda: httpx.get(f"{admin_server.url}/train/{job_id}", headers=AUTH).json()["progress"].get("epoch"),
        timeout=120,
        message="training under way",
        interval=0.1,
    )
    record = admin_server.models_dir.parent / "jobs" / job_id / "job.json"
    os.kill(json.loads(record.read_text())["pid"], signal.SIGKILL)
    job = wait_for_job(admin_server, job_id)
    assert job["state"] == "failed" and "signal 9" in job["reason"]
    r = httpx.post(f"{admin_server.url}/predict", files={"image": ("d.png", PNG, "image/png")})
    assert r.status_code == 200 and r.json()["model"]["version"] == before
    assert version_folders(admin_server) == folders  # the process is gone: nothing can appear later


def test_operator_cli_starts_follows_and_lists_jobs(admin_server):
    def cli(*args: str):
        return subprocess.run(
            [sys.executable, "-m", "app.admin", "--url", admin_server.url, "--token", TOKEN, *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    done = cli("train", "--epochs", "1", "--train-limit", "300", "--promote", "never", "--follow")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "epoch 1/1" in done.stdout and "succeeded" in done.stdout and "test accuracy" in done.stdout
    job_id = done.stdout.split()[1]
    listed = cli("jobs")
    assert job_id in listed.stdout and "succeeded" in listed.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "app.admin", "--url", admin_server.url, "--token", "nope", "jobs"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "401 unauthorized" in refused.stderr
