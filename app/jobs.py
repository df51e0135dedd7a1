"""Training jobs: one at a time, each the training CLI in its own process (lower priority, few
threads), its record on disk so it outlives a restart of the service. The job itself writes any new
version into the repository; the repository's poller swaps it in like any other version."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.config import Settings
from app.errors import JobConflict, JobNotFound
from training.config import PROGRESS_FILE  # a plain constant: no TensorFlow import

log = logging.getLogger("lenet.jobs")

ACTIVE = ("queued", "running")
LOG_FILE = "log.txt"
RECORD_FILE = "job.json"
OUTCOME_STATES = {"promoted": "succeeded", "exported": "succeeded", "rejected": "rejected"}


@dataclass
class Job:
    id: str
    options: dict[str, object]
    state: str = "queued"  # queued | running | succeeded | failed | cancelled | rejected
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    gate_accuracy: float | None = None
    version: int | None = None
    test_accuracy: float | None = None
    candidate: str | None = None
    reason: str = ""


class TrainingJobs:
    def __init__(self, settings: Settings, serving_accuracy: Callable[[str], float | None]) -> None:
        self.settings = settings
        self.root = Path(settings.jobs_dir)
        self._serving_accuracy = serving_accuracy
        self._jobs: dict[str, Job] = {}
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    # ----- records -----
    def start(self) -> None:
        """Load the records on disk; adopt a job whose process still runs, fail one whose process vanished."""
        self.root.mkdir(parents=True, exist_ok=True)
        for record in sorted(self.root.glob(f"*/{RECORD_FILE}")):
            try:
                job = Job(**json.loads(record.read_text()))
            except (OSError, ValueError, TypeError):
                log.warning("unreadable job record %s", record)
                continue
            self._jobs[job.id] = job
            if job.state in ACTIVE:
                if job.pid is not None and _is_our_training(job.pid, job.id):
                    log.info("job %s still running (pid %d): following it again", job.id, job.pid)
                    self._watch(job)
                else:
                    self._end(job, "failed", "the training process vanished (service restart, crash or kill)")

    async def close(self) -> None:
        for job in self.list():
            if job.state in ACTIVE:
                self._signal(job, signal.SIGTERM)
                self._end(job, "failed", "the service shut down while the job ran")
        # The watchers reap what was signalled (they give up on adopted processes at once).
        await asyncio.wait_for(asyncio.gather(*self._watchers, return_exceptions=True), 20)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no training job {job_id!r}")
        return job

    def folder(self, job: Job) -> Path:
        return self.root / job.id

    def _save(self, job: Job) -> None:
        path = self.folder(job) / RECORD_FILE
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(asdict(job), indent=1))
        os.replace(staging, path)  # a reader never sees half a record

    # ----- running -----
    def submit(self, options: dict[str, object]) -> Job:
        running = next((j for j in self._jobs.values() if j.state in ACTIVE), None)
        if running is not None:
            raise JobConflict(f"training job {running.id} is {running.state}; one job runs at a time",
                              job_id=running.id)
        job = Job(id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], options=options)
        self.folder(job).mkdir(parents=True)
        name = str(options["model"])
        if options["promote"] == "auto":
            serving = self._serving_accuracy(name)
            job.gate_accuracy = None if serving is None else round(serving - self.settings.train_gate_margin, 6)
        self._jobs[job.id] = job
        self._save(job)
        self._launch(job)
        return job

    def _launch(self, job: Job) -> None:
        o, folder = job.options, self.folder(job)
        argv = ["nice", "-n", str(self.settings.train_nice), sys.executable, "-m", "training", "train",
                "--arch", str(o["arch"]), "--name", str(o["model"]), "--epochs", str(o["epochs"]),
                "--batch-size", str(o["batch_size"]), "--learning-rate", str(o["learning_rate"]),
                "--seed", str(o["seed"]), "--augment" if o["augment"] else "--no-augment",
                "--repository", str(Path(self.settings.models_dir).resolve()),
                "--work-dir", str((folder / "work").resolve()), "--job-dir", str(folder.resolve()),
                "--threads", str(self.settings.train_threads), "--promote", str(o["promote"])]
        if o.get("train_limit"):
            argv += ["--train-limit", str(o["train_limit"])]
        if job.gate_accuracy is not None:
            argv += ["--gate-accuracy", str(job.gate_accuracy)]
        if self.settings.mnist_path is not None:
            argv += ["--data", str(Path(self.settings.mnist_path).resolve())]
        with open(folder / LOG_FILE, "ab") as log_file:
            child = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)  # its own process group: cancel stops all of it
        self._children[job.id] = child
        job.state, job.started, job.pid = "running", time.time(), child.pid
        self._save(job)
        log.info("training job %s started (pid %d): %s", job.id, child.pid, " ".join(argv[3:]))
        self._watch(job)

    def _watch(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._follow(job), name=f"job-{job.id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _follow(self, job: Job) -> None:
        while job.state in ACTIVE and self._alive(job):
            await asyncio.sleep(0.5)
        child = self._children.pop(job.id, None)
        if child is not None:
            await self._reap(job, child)
        if job.state not in ACTIVE:
            return  # cancelled meanwhile
        code = child.returncode if child is not None else None
        finished = next((e for e in reversed(self.events(job)) if e.get("event") == "finished"), None)
        if finished is None:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            self._end(job, "failed", f"the training process ended ({how}) before finishing; see the log tail")
            return
        job.version, job.test_accuracy = finished.get("version"), finished.get("test_accuracy")
        job.candidate = finished.get("path") if job.version is None else None
        self._end(job, OUTCOME_STATES.get(str(finished.get("state")), "failed"), str(finished.get("reason") or ""))

    async def _reap(self, job: Job, child: subprocess.Popen[bytes]) -> None:
        """Wait for the process to exit (it was signalled if cancelled); kill it if it lingers."""
        for _ in range(40):
            if child.poll() is not None:
                return
            await asyncio.sleep(0.25)
        self._signal(job, signal.SIGKILL)
        await asyncio.to_thread(child.wait)

    def _alive(self, job: Job) -> bool:
        child = self._children.get(job.id)
        if child is not None:
            return child.poll() is None
        return job.pid is not None and _is_our_training(job.pid, job.id)

    def _end(self, job: Job, state: str, reason: str) -> None:
        job.state, job.reason, job.finished = state, reason, time.time()
        self._save(job)
        log.info("training job %s %s%s", job.id, state, f": {reason}" if reason else "")

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in ACTIVE:
            self._signal(job, signal.SIGTERM)
            self._end(job, "cancelled", "cancelled by an admin")
        return job

    def _signal(self, job: Job, signum: int) -> None:
        if job.pid is not None:
            try:
                os.killpg(job.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    # ----- progress -----
    def events(self, job: Job) -> list[dict[str, object]]:
        try:
            lines = (self.folder(job) / PROGRESS_FILE).read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def log_tail(self, job: Job, lines: int = 20) -> list[str]:
        try:
            with open(self.folder(job) / LOG_FILE, "rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 16384))
                return handle.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    async def stream(self, job: Job, poll_s: float = 0.5) -> AsyncIterator[dict[str, object]]:
        """Progress events as they are written, then one `state` event when the job has ended."""
        sent = 0
        while True:
            events = self.events(job)
            for event in events[sent:]:
                yield event
            sent = len(events)
            if job.state not in ACTIVE:
                yield {"event": "state", "state": job.state, "version": job.version, "reason": job.reason}
                return
            await asyncio.sleep(poll_s)


def _is_our_training(pid: int, job_id: str) -> bool:
    """Whether `pid` is still the training process of this job (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"training" in cmdline and any(job_id.encode() in part for part in cmdline)
