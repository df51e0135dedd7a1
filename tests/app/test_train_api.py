"""/train on the real app (ASGI) with real training processes; the model behind /predict is a fake."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.jobs import Job, TrainingJobs
from app.main import create_app
from tests.app.conftest import add_version, served
from tests.conftest import FIXTURE_MNIST
from training.config import TrainConfig

TOKEN = "s3cret-token-for-tests"
QUICK = {"epochs": 1, "train_limit": 200, "promote": "never"}
FINISHED = {
    "event": "finished",
    "state": "exported",
    "version": None,
    "path": "/jobs/x/candidate/1",
    "reason": "",
    "test_accuracy": 0.5,
}


@dataclass
class Service:
    http: httpx.AsyncClient
    app: FastAPI
    tmp_path: Path

    def fake_training(self, body: str) -> None:
        """Launch `body` (a python script; `emit(line)` appends to the progress file) instead of the CLI."""
        script = self.tmp_path / "fake_training.py"
        script.write_text(f"#!{sys.executable}\n{FAKE_HEADER}{textwrap.dedent(body)}")
        self.app.state.jobs.program = [sys.executable, str(script)]


# The fake receives the real CLI's arguments; --job-dir says where its progress file is.
FAKE_HEADER = """import json, os, sys, time
job_dir = sys.argv[sys.argv.index("--job-dir") + 1]
def emit(line):
    with open(os.path.join(job_dir, "progress.jsonl"), "a") as handle:
        handle.write(line)
"""


@asynccontextmanager
async def running_service(tmp_path: Path, loader, **overrides) -> AsyncIterator[Service]:
    settings = Settings(
        **{
            "models_dir": tmp_path / "models",
            "jobs_dir": tmp_path / "jobs",
            "mnist_path": FIXTURE_MNIST,
            "admin_token": TOKEN,
            "warmup_batches": 0,
            "poll_interval_s": 0.2,
            **overrides,
        }
    )
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)
    async with served(app, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield Service(http, app, tmp_path)


@pytest.fixture
async def service(tmp_path, loader) -> AsyncIterator[Service]:
    async with running_service(tmp_path, loader) as running:
        yield running


@pytest.fixture
async def admin(service) -> httpx.AsyncClient:
    return service.http


async def wait_until_done(http: httpx.AsyncClient, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await http.get(f"/train/{job_id}")).json()
        if job["state"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s: {job['reason']!r} {job['log_tail']}")


@pytest.mark.parametrize(
    "headers,status,code",
    [
        pytest.param({}, 401, "unauthorized", id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, 401, "unauthorized", id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized", id="wrong-scheme"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, 401, "unauthorized", id="token-prefix"),
        # What a timing attack tries: the right length, right but for the last character; and a bare prefix.
        # Both sides are hashed before compare_digest, so neither answers faster than a wrong token.
        pytest.param(
            {"Authorization": f"Bearer {TOKEN[:-1]}{chr(ord(TOKEN[-1]) ^ 1)}"},
            401,
            "unauthorized",
            id="all-but-last-character",
        ),
        pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}"}, 401, "unauthorized", id="token-minus-last-character"),
    ],
)
async def test_admin_endpoints_need_the_token(admin, headers, status, code):
    for method, path in (("POST", "/train"), ("GET", "/train"), ("GET", "/train/x"), ("DELETE", "/train/x")):
        response = await admin.request(method, path, headers={"Authorization": "", **headers}, json=QUICK)
        assert response.status_code == status and response.json()["error"]["code"] == code, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_endpoints_are_disabled_without_a_configured_token(tmp_path, loader):
    settings = Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs", warmup_batches=0)
    add_version(settings.models_dir, "lenet5", 1)
    app = create_app(settings, loader)
    async with served(app) as http:
        response = await http.post("/train", json=QUICK, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "LENET_ADMIN_TOKEN" in response.json()["error"]["message"]


async def test_bad_options_are_422(admin):
    for body in ({"arch": "resnet50"}, {"epochs": 0}, {"promote": "sometimes"}, {"unknown": 1}):
        assert (await admin.post("/train", json=body)).status_code == 422, body
    # Whole numbers are numbers: true was taken as 1 epoch, "3" and 3.0 as 3 (a new user's finding)
    wrong = ({"epochs": True}, {"epochs": "3"}, {"batch_size": 64.0}, {"seed": False}, {"train_limit": "1000"})
    # and a rate is a number (true was a learning rate of 1.0), a switch a boolean ("yes" and 1 were true)
    wrong += ({"learning_rate": True}, {"learning_rate": "0.01"}, {"augment": "yes"}, {"augment": 1})
    for body in wrong:
        response = await admin.post("/train", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", body
    # a model name the pattern refuses is refused by the body's schema first: 422, not the 404 of a query or path
    # (the README says so since a new user's review found it saying 404)
    response = await admin.post("/train", json={"model": "../x", "epochs": 1})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


async def test_a_body_of_another_media_type_is_415(admin):
    # text/plain was 422 "Input should be a valid dictionary" (the second outside check's finding)
    response = await admin.post("/train", content=b'{"epochs": 1}', headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert "application/json" in response.json()["error"]["message"]


async def test_a_body_that_is_not_json_is_400_as_the_readme_says(admin):
    # The README's error table: invalid JSON is 400 bad_request, as on /predict and /v2 (was 422 invalid_request)
    response = await admin.post("/train", content=b"not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request", response.text
    assert "JSON" in response.json()["error"]["message"]


async def test_second_job_conflicts_then_cancel(admin):
    first = await admin.post("/train", json={**QUICK, "epochs": 30, "train_limit": 1000})
    assert first.status_code == 202
    job_id = first.json()["job_id"]
    assert first.json()["status_url"].endswith(f"/train/{job_id}")
    second = await admin.post("/train", json=QUICK)
    assert second.status_code == 409 and second.json()["error"]["job_id"] == job_id
    cancelled = (await admin.delete(f"/train/{job_id}")).json()
    assert cancelled["state"] == "cancelled"
    listed = (await admin.get("/train")).json()["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]


async def test_job_runs_to_the_end_with_progress_and_events(admin, tmp_path):
    job_id = (await admin.post("/train", json=QUICK)).json()["job_id"]
    events = []
    async with admin.stream("GET", f"/train/{job_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and "epoch" in kinds and kinds[-1] == "state"
    assert events[-1]["state"] == "succeeded"
    job = await wait_until_done(admin, job_id)
    assert job["state"] == "succeeded" and job["version"] is None  # promote=never: a candidate only
    assert job["candidate"].endswith("/candidate/1") and job["test_accuracy"] > 0
    assert job["progress"]["epoch"] == 1 and job["progress"]["epochs"] == 1
    assert any("test accuracy" in line for line in job["log_tail"])
    assert not (tmp_path / "models" / "lenet5" / "2").exists()


async def test_a_vanished_process_is_marked_failed_after_a_restart(tmp_path):
    settings = Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs")
    folder = tmp_path / "jobs" / "old-job"
    folder.mkdir(parents=True)
    record = Job(id="old-job", options={}, state="running", pid=2**22 + 17)  # no such process
    (folder / "job.json").write_text(json.dumps(record.__dict__))
    jobs = TrainingJobs(settings)
    jobs.start()
    job = jobs.get("old-job")
    assert job.state == "failed" and "vanished" in job.reason
    assert json.loads((folder / "job.json").read_text())["state"] == "failed"


def test_training_options_and_job_states_are_documented_from_one_source():
    """The API's defaults and limits are the training configuration's; states are an enum in OpenAPI."""
    schemas = create_app(Settings(warmup_batches=0), lambda path: None).openapi()["components"]["schemas"]
    request = schemas["TrainRequest"]["properties"]
    defaults = TrainConfig()
    for name in ("arch", "epochs", "batch_size", "learning_rate", "augment", "seed", "promote"):
        assert request[name]["default"] == getattr(defaults, name), name
    assert request["promote"]["default"] == "auto"
    state = schemas["JobPublic"]["properties"]["state"]
    state = schemas[state["$ref"].rsplit("/", 1)[-1]] if "$ref" in state else state
    assert set(state.get("enum", ())) == {"queued", "running", "succeeded", "failed", "cancelled", "rejected"}, state


async def test_torn_and_garbage_progress_lines_do_not_stick_the_job(service):
    """One torn line killed the watcher: the job stayed `running` and every later POST got 409."""
    job_id = (await service.http.post("/train", json=QUICK)).json()["job_id"]
    progress = service.tmp_path / "jobs" / job_id / "progress.jsonl"
    with progress.open("a") as handle:  # the real CLI appends after these
        handle.write('not json at all\n[1, 2]\n{"event": "batch", "epo')
    job = await wait_until_done(service.http, job_id)
    assert job["state"] == "succeeded", job
    assert job["progress"]["epoch"] == 1 and job["progress"]["skipped_lines"] >= 2, job["progress"]
    again = await service.http.post("/train", json=QUICK)
    assert again.status_code == 202, again.text
    await wait_until_done(service.http, again.json()["job_id"])


async def test_a_failed_job_says_why(tmp_path, loader):
    """The real cause, not "exit code 2 ... see the log tail" (it was the 7th line, after TensorFlow's)."""
    async with running_service(tmp_path, loader, mnist_path=tmp_path / "missing.npz") as service:
        job_id = (await service.http.post("/train", json=QUICK)).json()["job_id"]
        job = await wait_until_done(service.http, job_id)
        listed = (await service.http.get("/train")).json()["jobs"][0]
    assert job["state"] == "failed"
    assert "missing.npz: no such file" in job["reason"], job["reason"]
    assert any("missing.npz" in line for line in listed["log_tail"]), listed


@pytest.mark.parametrize(
    "overrides,body,expected",
    [
        pytest.param(
            {"train_timeout_s": 1.5},
            "emit(json.dumps({'event': 'start'}) + '\\n')\nwhile True:\n"
            "    time.sleep(0.2)\n    emit(json.dumps({'event': 'batch', 'epoch': 1, 'step': 1}) + '\\n')\n",
            "time limit",
            id="hangs-past-the-time-limit",
        ),
        pytest.param({"train_stall_s": 1.0}, "time.sleep(600)\n", "no progress", id="never-writes-progress"),
        pytest.param(
            {},
            "print('W0000 00:00:1.0 1 port.cc:1] TensorFlow noise', file=sys.stderr)\n"
            "print('error: the real cause', file=sys.stderr)\n"
            "print('I0000 00:00:1.0 1 cudart_stub.cc:31] more noise', file=sys.stderr)\nsys.exit(3)\n",
            "the real cause",
            id="exits-without-progress",
        ),
        pytest.param(
            {},
            "emit(json.dumps({'event': 'failed', 'error': 'ValueError: a cause from the CLI'}) + '\\n')\nsys.exit(2)\n",
            "a cause from the CLI",
            id="reports-its-failure",
        ),
    ],
)
async def test_a_faulty_training_process_always_ends_and_frees_the_slot(tmp_path, loader, overrides, body, expected):
    async with running_service(tmp_path, loader, **overrides) as service:
        service.fake_training(body)
        job_id = (await service.http.post("/train", json=QUICK)).json()["job_id"]
        job = await wait_until_done(service.http, job_id, timeout=20)
        assert job["state"] == "failed" and expected in job["reason"], job
        service.fake_training(f"emit(json.dumps({FINISHED!r}) + '\\n')\n")
        again = await service.http.post("/train", json=QUICK)
        assert again.status_code == 202, again.text
        assert (await wait_until_done(service.http, again.json()["job_id"], timeout=20))["state"] == "succeeded"


async def test_a_killed_process_fails_the_job(service):
    service.fake_training("emit(json.dumps({'event': 'start'}) + '\\n')\ntime.sleep(600)\n")
    job_id = (await service.http.post("/train", json=QUICK)).json()["job_id"]
    record = service.tmp_path / "jobs" / job_id / "job.json"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (record.parent / "progress.jsonl").exists():
        await asyncio.sleep(0.05)
    os.kill(json.loads(record.read_text())["pid"], signal.SIGKILL)
    job = await wait_until_done(service.http, job_id, timeout=20)
    assert job["state"] == "failed" and "signal 9" in job["reason"], job


async def test_event_stream_sends_keep_alive_comments(service):
    service.app.state.jobs.keepalive_s = 0.2
    service.fake_training(f"time.sleep(1.5)\nemit(json.dumps({FINISHED!r}) + '\\n')\n")
    job_id = (await service.http.post("/train", json=QUICK)).json()["job_id"]
    lines = []
    async with service.http.stream("GET", f"/train/{job_id}/events") as stream:
        async for line in stream.aiter_lines():
            lines.append(line)
    assert ": keep-alive" in lines, lines
    assert lines.index(": keep-alive") < next(i for i, line in enumerate(lines) if line.startswith("event: finished"))
    assert json.loads(lines[-2][6:])["state"] == "succeeded", lines


@pytest.mark.parametrize(
    "token,state",
    [(None, "off"), ("", "off"), (" \n", "off"), (TOKEN, "on")],
    ids=["unset", "empty", "whitespace", "a-token"],
)
async def test_the_log_says_at_start_up_whether_the_admin_endpoints_are_on(tmp_path, loader, caplog, token, state):
    # a token of whitespace only turned them off without a word (the second outside check's finding)
    settings = Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs", warmup_batches=0, admin_token=token)
    add_version(settings.models_dir, "lenet5", 1)
    app = create_app(settings, loader)
    with caplog.at_level("INFO", logger="lenet.app"):
        async with app.router.lifespan_context(app):
            pass
    said = [r.getMessage() for r in caplog.records if "admin endpoints are" in r.getMessage()]
    assert len(said) == 1 and f"admin endpoints are {state}" in said[0] and "LENET_ADMIN_TOKEN" in said[0], said
    assert TOKEN not in caplog.text
