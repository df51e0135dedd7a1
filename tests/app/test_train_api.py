"""/train on the real app (ASGI) with real training processes; the model behind /predict is a fake."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from app.config import Settings
from app.jobs import Job, TrainingJobs
from app.main import create_app
from tests.app.conftest import add_version
from tests.conftest import FIXTURE_MNIST

TOKEN = "s3cret-token-for-tests"
QUICK = {"epochs": 1, "train_limit": 200, "promote": "never"}


@pytest.fixture
async def admin(tmp_path, loader):
    settings = Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs", mnist_path=FIXTURE_MNIST,
                        admin_token=TOKEN, warmup_batches=0, poll_interval_s=0.2)
    add_version(settings.models_dir, "lenet5", 1, digit=7)
    app = create_app(settings, loader)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            yield http


async def wait_until_done(http: httpx.AsyncClient, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await http.get(f"/train/{job_id}")).json()
        if job["state"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job['state']}: {job['log_tail']}")


@pytest.mark.parametrize("headers,status,code", [
    pytest.param({}, 401, "unauthorized", id="no-token"),
    pytest.param({"Authorization": "Bearer wrong"}, 401, "unauthorized", id="wrong-token"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized", id="wrong-scheme"),
    pytest.param({"Authorization": f"Bearer {TOKEN}x"}, 401, "unauthorized", id="token-prefix"),
    # What a timing attack tries: the right length, right but for the last character; and a bare prefix.
    # Both sides are hashed before compare_digest, so neither answers faster than a wrong token.
    pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}{chr(ord(TOKEN[-1]) ^ 1)}"}, 401, "unauthorized",
                 id="all-but-last-character"),
    pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}"}, 401, "unauthorized", id="token-minus-last-character"),
])
async def test_admin_endpoints_need_the_token(admin, headers, status, code):
    for method, path in (("POST", "/train"), ("GET", "/train"), ("GET", "/train/x"), ("DELETE", "/train/x")):
        response = await admin.request(method, path, headers={"Authorization": "", **headers}, json=QUICK)
        assert response.status_code == status and response.json()["error"]["code"] == code, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_endpoints_are_disabled_without_a_configured_token(tmp_path, loader):
    settings = Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs", warmup_batches=0)
    add_version(settings.models_dir, "lenet5", 1)
    app = create_app(settings, loader)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            response = await http.post("/train", json=QUICK, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "LENET_ADMIN_TOKEN" in response.json()["error"]["message"]


async def test_bad_options_are_422(admin):
    for body in ({"arch": "resnet50"}, {"epochs": 0}, {"promote": "sometimes"}, {"unknown": 1}):
        assert (await admin.post("/train", json=body)).status_code == 422, body


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
    jobs = TrainingJobs(settings, lambda name: None)
    jobs.start()
    job = jobs.get("old-job")
    assert job.state == "failed" and "vanished" in job.reason
    assert json.loads((folder / "job.json").read_text())["state"] == "failed"
