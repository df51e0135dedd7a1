"""The supervisor with fake training programs: the command it runs, adoption after a restart, stopping
a process that ignores SIGTERM, shutdown. (Faults through the API: tests/app/test_train_api.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.config import Settings
from app.jobs import supervisor
from app.jobs.process import spawn
from app.jobs.records import Job, JobState, save_record
from app.jobs.supervisor import TrainingJobs
from training.__main__ import _parser
from training.config import TrainConfig

OPTIONS = {"arch": "lenet5", "model": "lenet5", "epochs": 2, "promote": "auto"}
FINISHED = {
    "event": "finished",
    "state": "promoted",
    "version": 2,
    "path": "/m/lenet5/2",
    "reason": "",
    "test_accuracy": 0.99,
    "gate_accuracy": 0.988,
}
HEADER = """import json, os, signal, sys, time
job_dir = sys.argv[sys.argv.index("--job-dir") + 1]
def emit(event):
    with open(os.path.join(job_dir, "progress.jsonl"), "a") as handle:
        handle.write(json.dumps(event) + "\\n")
"""


def fake(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "fake_training.py"
    script.write_text(HEADER + textwrap.dedent(body))
    return [sys.executable, str(script)]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(models_dir=tmp_path / "models", jobs_dir=tmp_path / "jobs", train_nice=0)


async def until(condition, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        await asyncio.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_job_runs_the_cli_with_its_training_config(tmp_path, settings):
    jobs = TrainingJobs(
        settings,
        program=fake(
            tmp_path,
            f"""
        open(os.path.join(job_dir, "argv.json"), "w").write(json.dumps(sys.argv[1:]))
        emit({FINISHED!r})
    """,
        ),
    )
    jobs.start()
    job = await jobs.submit(dict(OPTIONS))
    await until(lambda: not job.state.active, what="the end")
    argv = json.loads((jobs.folder(job) / "argv.json").read_text())
    parsed = TrainConfig.from_arguments(_parser().parse_args(argv))
    assert parsed == jobs.config(job)  # what the CLI reads back is the configuration the runner built
    assert (parsed.epochs, parsed.promote, parsed.threads) == (2, "auto", settings.train_threads)
    assert parsed.batch_size == TrainConfig().batch_size  # not in the request: the one default
    assert job.state is JobState.SUCCEEDED and (job.version, job.gate_accuracy) == (2, 0.988)
    await jobs.close()


async def running_record(tmp_path: Path, settings: Settings, body: str) -> tuple[Job, asyncio.subprocess.Process]:
    """A job started the way the supervisor starts one, left running as by a service that went away."""
    job = Job(id="left-running", options=dict(OPTIONS), state=JobState.RUNNING, started=time.time())
    folder = Path(settings.jobs_dir) / job.id
    folder.mkdir(parents=True)
    process = await spawn([*fake(tmp_path, body), "train", "--job-dir", str(folder)], folder, folder / "log.txt")
    job.pid = process.pid
    save_record(job, folder)
    return job, process


@pytest.mark.parametrize(
    "body,state,reason",
    [
        pytest.param(
            f"while not os.path.exists(job_dir + '/go'): time.sleep(0.02)\nemit({FINISHED!r})\n",
            JobState.SUCCEEDED,
            "",
            id="finishes",
        ),
        pytest.param(
            "while not os.path.exists(job_dir + '/go'): time.sleep(0.02)\n"
            "print('RuntimeError: out of memory', file=sys.stderr)\nsys.exit(1)\n",
            JobState.FAILED,
            "RuntimeError: out of memory (exit status unknown",
            id="dies",
        ),
    ],
)
async def test_a_job_left_running_by_an_earlier_service_is_followed_to_its_end(tmp_path, settings, body, state, reason):
    job, process = await running_record(tmp_path, settings, body)
    jobs = TrainingJobs(settings)
    jobs.start()
    adopted = jobs.get(job.id)
    assert adopted.state is JobState.RUNNING, adopted.reason  # the lock says it still runs
    (jobs.folder(adopted) / "go").touch()
    await until(lambda: not adopted.state.active, what="the end")
    assert adopted.state is state and reason in adopted.reason, adopted.reason
    await process.wait()
    await jobs.close()


async def test_a_recorded_pid_that_is_not_our_training_is_not_adopted(settings):
    folder = Path(settings.jobs_dir) / "old-job"
    folder.mkdir(parents=True)
    save_record(Job(id="old-job", options={}, state=JobState.RUNNING, pid=os.getpid()), folder)  # alive, not ours
    jobs = TrainingJobs(settings)
    jobs.start()
    assert jobs.get("old-job").state is JobState.FAILED and "vanished" in jobs.get("old-job").reason
    assert json.loads((folder / "job.json").read_text())["state"] == "failed"


@pytest.mark.parametrize("end", ["cancel", "timeout", "close"])
async def test_a_process_that_ignores_sigterm_is_killed(tmp_path, settings, monkeypatch, end):
    monkeypatch.setattr(supervisor, "STOP_GRACE_S", 0.3)
    if end == "timeout":
        settings = settings.model_copy(update={"train_timeout_s": 0.5})
    jobs = TrainingJobs(
        settings,
        program=fake(
            tmp_path,
            """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit({"event": "start"})
        time.sleep(600)
    """,
        ),
    )
    jobs.start()
    job = await jobs.submit(dict(OPTIONS))
    await until(lambda: (jobs.folder(job) / "progress.jsonl").exists(), what="the first event")
    if end == "cancel":
        assert jobs.cancel(job.id).state is JobState.CANCELLED
    elif end == "close":
        await jobs.close()
        assert job.state is JobState.FAILED and "shut down" in job.reason
    await until(lambda: gone(job.pid), what="the process's end")
    await until(lambda: not job.state.active, what="a terminal state")
    if end == "timeout":
        assert job.state is JobState.FAILED and "time limit" in job.reason and job.exit_code == -9, job
    await jobs.close()


async def test_a_job_that_ended_while_no_service_watched_gets_the_outcome_it_wrote(settings):
    folder = Path(settings.jobs_dir) / "ended-meanwhile"
    folder.mkdir(parents=True)
    save_record(Job(id="ended-meanwhile", options={}, state=JobState.RUNNING, pid=2**22 + 17), folder)
    (folder / "progress.jsonl").write_text(json.dumps({"event": "start"}) + "\n" + json.dumps(FINISHED) + "\n")
    jobs = TrainingJobs(settings)
    jobs.start()
    job = jobs.get("ended-meanwhile")
    assert job.state is JobState.SUCCEEDED and job.version == 2, job


async def test_the_training_process_does_not_inherit_the_admin_token(tmp_path, monkeypatch):
    # the secret stays in the service: the training program (and anything it runs) never needs it
    monkeypatch.setenv("LENET_ADMIN_TOKEN", "s3cret-in-the-parent")
    monkeypatch.setenv("LENET_TRAIN_THREADS", "1")  # other settings pass through
    folder = tmp_path / "job"
    folder.mkdir()
    body = "print(repr(os.environ.get('LENET_ADMIN_TOKEN')), os.environ.get('LENET_TRAIN_THREADS'), flush=True)\n"
    process = await spawn([*fake(tmp_path, body), "train", "--job-dir", str(folder)], folder, folder / "log.txt")
    assert await process.wait() == 0
    assert (folder / "log.txt").read_text().split() == ["None", "1"]
