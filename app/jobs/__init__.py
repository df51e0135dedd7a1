"""Training jobs: the supervisor of the training processes (supervisor), their processes (process),
their records (records) and their progress (progress)."""

from __future__ import annotations

from app.jobs.progress import ProgressReader, job_progress
from app.jobs.records import Job, JobState
from app.jobs.supervisor import TrainingJobs

__all__ = ["Job", "JobState", "ProgressReader", "TrainingJobs", "job_progress"]
