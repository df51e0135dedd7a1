"""Training jobs: one at a time, each the training CLI in its own process (lower priority, few threads),
its record on disk so it outlives a restart of the service. The job itself writes any new version into
the repository (the gate is the CLI's: training.pipeline.promotion_gate); the repository's poller swaps
it in like any other version.

Every job reaches a terminal state and frees the slot: the supervisor awaits its process's exit and
stops a process that runs past LENET_TRAIN_TIMEOUT_S or writes no progress for LENET_TRAIN_STALL_S."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from app.config import Settings
from app.errors import JobConflict, JobNotFound
from app.jobs.process import AdoptedExit, ChildExit, ProcessExit, lock_held, signal_group, spawn
from app.jobs.progress import ProgressReader, cause_in_log, job_progress, log_tail
from app.jobs.records import OUTCOME_STATES, RECORD_FILE, Job, JobState, load_record, save_record
from training.config import PROGRESS_FILE, TrainConfig  # no TensorFlow import

log = logging.getLogger("lenet.jobs")

LOG_FILE = "log.txt"
KEEPALIVE_S = 15.0  # an event stream sends a comment at least this often (proxies close idle connections)
WATCH_S = 0.5  # how often an event stream looks at the progress file's size (one stat)
STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL if the process is still there after this


def training_program() -> list[str]:
    """What runs a job (tests put a fake training script here); `train` and the options follow."""
    return [sys.executable, "-m", "training"]


class TrainingJobs:
    def __init__(
        self, settings: Settings, *, program: Sequence[str] | None = None, keepalive_s: float = KEEPALIVE_S
    ) -> None:
        self.settings = settings
        self.root = Path(settings.jobs_dir)
        self.program = list(program or training_program())
        self.keepalive_s = keepalive_s
        self._jobs: dict[str, Job] = {}
        self._readers: dict[str, ProgressReader] = {}
        self._ended: dict[str, asyncio.Event] = {}  # set when the job reaches a terminal state
        self._stops: dict[str, asyncio.Event] = {}  # set to make the supervisor stop the process
        self._supervisors: set[asyncio.Task[None]] = set()

    # ----- records -----
    def start(self) -> None:
        """Load the records on disk; follow a job whose process still runs, fail one whose process is gone."""
        self.root.mkdir(parents=True, exist_ok=True)
        for record in sorted(self.root.glob(f"*/{RECORD_FILE}")):
            try:
                job = load_record(record)
            except (OSError, ValueError, TypeError):
                log.warning("unreadable job record %s", record)
                continue
            self._jobs[job.id] = job
            if job.state.active:
                self._adopt(job)

    def _adopt(self, job: Job) -> None:
        if job.pid is not None and lock_held(self.folder(job)):  # only our training holds the lock
            try:
                exit_ = AdoptedExit(job.pid)
            except ProcessLookupError:
                pass  # it ended a moment ago: as below
            except (AttributeError, OSError) as exc:  # no pidfd here: it cannot be awaited, so do not pretend
                signal_group(job.pid, signal.SIGTERM)
                self._end(
                    job,
                    JobState.FAILED,
                    f"stopped: left running by an earlier service instance, which this one cannot follow ({exc})",
                )
                return
            else:
                log.info("job %s still running (pid %d): following it again", job.id, job.pid)
                self._supervise(job, exit_)
                return
        reader = self.reader(job)  # it ended while no service watched: its own last events say how
        reader.finish()
        if reader.last("finished") is None and reader.last("failed") is None:
            self._end(job, JobState.FAILED, "the training process vanished (service restart, crash or kill)")
        else:
            self._conclude(job, None, "", reader)

    async def close(self) -> None:
        for job in self.newest_first():
            if job.state.active:
                self._end(job, JobState.FAILED, "the service shut down while the job ran")
        if self._supervisors:  # they stop the processes
            await asyncio.wait(set(self._supervisors), timeout=STOP_GRACE_S + 5)

    def newest_first(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no training job {job_id!r}")
        return job

    def folder(self, job: Job) -> Path:
        return self.root / job.id

    def reader(self, job: Job) -> ProgressReader:
        if job.id not in self._readers:
            self._readers[job.id] = ProgressReader(self.folder(job) / PROGRESS_FILE)
        return self._readers[job.id]

    # ----- running -----
    async def submit(self, options: dict[str, object]) -> Job:
        running = next((j for j in self._jobs.values() if j.state.active), None)
        if running is not None:
            raise JobConflict(
                f"training job {running.id} is {running.state}; one job runs at a time", job_id=running.id
            )
        job = Job(id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], options=options)
        folder = self.folder(job)
        folder.mkdir(parents=True)
        self._jobs[job.id] = job  # the slot is taken before the first await
        save_record(job, folder)
        argv = self.argv(job)
        try:
            process = await spawn(argv, folder, folder / LOG_FILE)
        except OSError as exc:
            self._end(job, JobState.FAILED, f"the training process could not start: {exc}")
            return job
        job.pid, job.started = process.pid, time.time()
        if job.state is JobState.QUEUED:  # not cancelled while it started
            job.state = JobState.RUNNING
            save_record(job, folder)
        log.info("training job %s started (pid %d): %s", job.id, process.pid, " ".join(argv))
        self._supervise(job, ChildExit(process))
        return job

    def config(self, job: Job) -> TrainConfig:
        """The job's training configuration: the request's options, the service's folders and limits."""
        options = dict(job.options)
        options["name"] = options.pop("model", None)
        mnist = self.settings.mnist_path
        return TrainConfig(
            # Untyped on purpose: the request's options, validated as a TrainRequest on the way in and
            # checked again by TrainConfig.__post_init__ (choices, bounds, the model name).
            **options,  # type: ignore[arg-type]
            repository=str(Path(self.settings.models_dir).resolve()),
            work_dir=str((self.folder(job) / "work").resolve()),
            job_dir=str(self.folder(job).resolve()),
            threads=self.settings.train_threads,
            gate_margin=self.settings.train_gate_margin,
            data=str(Path(mnist).resolve()) if mnist is not None else None,
        )

    def argv(self, job: Job) -> list[str]:
        return ["nice", "-n", str(self.settings.train_nice), *self.program, "train", *self.config(job).to_argv()]

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state.active:
            self._end(job, JobState.CANCELLED, "cancelled by an admin")  # its supervisor stops the process
        return job

    def _supervise(self, job: Job, exit_: ProcessExit) -> None:
        task = asyncio.get_running_loop().create_task(self._watch(job, exit_), name=f"job-{job.id}")
        self._supervisors.add(task)
        task.add_done_callback(self._supervisors.discard)

    async def _watch(self, job: Job, exit_: ProcessExit) -> None:
        """Await the process's exit; stop it when it runs too long, stalls, or the job ended (cancel, close)."""
        exited = asyncio.ensure_future(exit_.wait())
        stop = asyncio.ensure_future(self._event(self._stops, job).wait())
        verdict = ""  # why the supervisor stopped it
        try:
            while not exited.done() and not stop.done():
                deadline, why = self._deadline(job)
                if time.time() >= deadline:
                    verdict = why
                    break
                await asyncio.wait({exited, stop}, timeout=deadline - time.time(), return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                signal_group(job.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(exited), STOP_GRACE_S)
                except TimeoutError:
                    signal_group(job.pid, signal.SIGKILL)
                    await exited
            code = exited.result()
        finally:
            stop.cancel()
            exit_.close()
        reader = self.reader(job)
        reader.finish()
        if job.state.active:
            self._conclude(job, code, verdict, reader)

    def _deadline(self, job: Job) -> tuple[float, str]:
        """When the watchdog acts if the process neither exits nor writes progress, and what it then says."""
        started = job.started or job.created
        limit = started + self.settings.train_timeout_s
        try:
            written = max(started, (self.folder(job) / PROGRESS_FILE).stat().st_mtime)
        except OSError:
            written = started
        stalled = written + self.settings.train_stall_s
        if limit <= stalled:
            return limit, (
                f"stopped: still running after the time limit of {self.settings.train_timeout_s:g} s "
                "(LENET_TRAIN_TIMEOUT_S)"
            )
        return stalled, f"stopped: no progress for {self.settings.train_stall_s:g} s (LENET_TRAIN_STALL_S)"

    def _conclude(self, job: Job, code: int | None, verdict: str, reader: ProgressReader) -> None:
        finished = reader.last("finished")
        if verdict or finished is None:
            self._end(job, JobState.FAILED, verdict or self._cause(job, code, reader), code)
            return
        version, accuracy, gate = finished.get("version"), finished.get("test_accuracy"), finished.get("gate_accuracy")
        job.version = version if isinstance(version, int) else None
        job.test_accuracy = float(accuracy) if isinstance(accuracy, (int, float)) else None
        job.gate_accuracy = float(gate) if isinstance(gate, (int, float)) else None
        job.candidate = str(finished.get("path")) if job.version is None and finished.get("path") else None
        state = OUTCOME_STATES.get(str(finished.get("state")), JobState.FAILED)
        self._end(job, state, str(finished.get("reason") or ""), code)

    def _cause(self, job: Job, code: int | None, reader: ProgressReader) -> str:
        """A failure's real cause: the CLI's own `failed` event, else the last meaningful line of its log."""
        failed = reader.last("failed")
        if failed is not None and failed.get("error"):
            return str(failed["error"])
        if code is not None and code < 0:
            return f"the training process was killed by signal {-code} ({signal.Signals(-code).name})"
        how = f"exit code {code}" if code is not None else "exit status unknown: adopted after a service restart"
        cause = cause_in_log(log_tail(self.folder(job) / LOG_FILE))
        return f"{cause} ({how})" if cause else f"the training process ended ({how}) before finishing"

    def _end(self, job: Job, state: JobState, reason: str, code: int | None = None) -> None:
        job.state, job.reason, job.finished = state, reason, time.time()
        job.exit_code = code if code is not None else job.exit_code
        save_record(job, self.folder(job))
        self._event(self._stops, job).set()
        self._event(self._ended, job).set()
        log.info("training job %s %s%s", job.id, state, f": {reason}" if reason else "")

    @staticmethod
    def _event(events: dict[str, asyncio.Event], job: Job) -> asyncio.Event:
        return events.setdefault(job.id, asyncio.Event())

    # ----- progress -----
    def describe(self, job: Job, log_lines: int = 20) -> dict[str, object]:
        """The job as GET /train shows it."""
        reader = self.reader(job)
        reader.refresh()
        return {
            "job_id": job.id,
            "state": job.state,
            "options": job.options,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "progress": job_progress(reader.events) | {"skipped_lines": reader.skipped},
            "gate_accuracy": job.gate_accuracy,
            "version": job.version,
            "test_accuracy": job.test_accuracy,
            "candidate": job.candidate,
            "reason": job.reason,
            "exit_code": job.exit_code,
            "log_tail": log_tail(self.folder(job) / LOG_FILE, log_lines) if log_lines else [],
        }

    async def stream(self, job: Job) -> AsyncIterator[dict[str, object] | None]:
        """Progress events as they are written (None: nothing for `keepalive_s`, send a keep-alive), then one
        `state` event once the job has ended."""
        reader, ended = self.reader(job), self._event(self._ended, job)
        sent, quiet_since = 0, time.monotonic()
        while True:
            over = not job.state.active  # read once more after the end: the last events come before it
            reader.refresh()
            for event in reader.events[sent:]:
                yield event
                quiet_since = time.monotonic()
            sent = len(reader.events)
            if over:
                yield {"event": "state", "state": job.state.value, "version": job.version, "reason": job.reason}
                return
            if time.monotonic() - quiet_since >= self.keepalive_s:
                yield None
                quiet_since = time.monotonic()
            try:
                await asyncio.wait_for(ended.wait(), min(WATCH_S, self.keepalive_s))
            except TimeoutError:
                pass
