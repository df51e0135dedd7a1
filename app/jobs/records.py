"""A training job's record: its state and outcome, kept as job.json in its folder so it outlives a
restart of the service."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

RECORD_FILE = "job.json"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # trained, but promote=auto's gate kept it out of the repository

    @property
    def active(self) -> bool:
        """Whether the job holds the one training slot."""
        return self in (JobState.QUEUED, JobState.RUNNING)


# The training CLI's outcome (the `state` of its `finished` event) -> the job's state.
OUTCOME_STATES = {
    "promoted": JobState.SUCCEEDED,
    "exported": JobState.SUCCEEDED,
    "evaluated": JobState.SUCCEEDED,
    "rejected": JobState.REJECTED,
}


@dataclass
class Job:
    id: str
    options: dict[str, object]
    state: JobState = JobState.QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    exit_code: int | None = None  # negative: killed by that signal; None: unknown (adopted) or not ended
    gate_accuracy: float | None = None
    version: int | None = None
    test_accuracy: float | None = None
    candidate: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        self.state = JobState(self.state)  # a record read back from JSON holds the plain string


def save_record(job: Job, folder: Path) -> None:
    path = folder / RECORD_FILE
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(asdict(job), indent=1))
    os.replace(staging, path)  # a reader never sees half a record


def load_record(path: Path) -> Job:
    """Raises OSError, ValueError or TypeError for a record that cannot be read back."""
    return Job(**json.loads(path.read_text()))
