"""Admin: retrain from the running service (a background job in its own process)."""
from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.deps import AdminDep, JobsDep, RepositoryDep
from app.jobs import Job, TrainingJobs
from app.schemas import ERROR_RESPONSES, JobPublic, JobsPublic, TrainAccepted, TrainRequest

router = APIRouter(prefix="/train", tags=["train (admin)"], dependencies=[AdminDep],
                   responses={401: ERROR_RESPONSES[400] | {"description": "missing or wrong token"},
                              403: ERROR_RESPONSES[400] | {"description": "admin endpoints disabled"}})


@router.post("", status_code=202, response_model=TrainAccepted,
             responses={400: ERROR_RESPONSES[400], 409: ERROR_RESPONSES[400]})
async def start_training(body: TrainRequest, request: Request, jobs: JobsDep, repository: RepositoryDep) -> dict:
    """Start a training job (one at a time: 409 with the running job's id otherwise)."""
    options = body.model_dump()
    options["model"] = options["model"] or repository.settings.default_model
    job = jobs.submit(options)
    return {"job_id": job.id, "status_url": str(request.url_for("get_training_job", job_id=job.id))}


@router.get("", response_model=JobsPublic)
async def list_training_jobs(jobs: JobsDep) -> dict:
    """Every training job, newest first."""
    return {"jobs": [describe(jobs, job, log_lines=0) for job in jobs.list()]}


@router.get("/{job_id}", response_model=JobPublic, responses={404: ERROR_RESPONSES[404]})
async def get_training_job(job_id: str, jobs: JobsDep) -> dict:
    """State, progress (epoch, step, loss, accuracy, validation accuracy, elapsed, ETA), result, log tail."""
    return describe(jobs, jobs.get(job_id))


@router.get("/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}, 404: ERROR_RESPONSES[404]})
async def stream_training_events(job_id: str, jobs: JobsDep) -> StreamingResponse:
    """The job's progress as server-sent events, ending with a `state` event."""
    job = jobs.get(job_id)

    async def events():
        async for event in jobs.stream(job):
            yield b"event: " + str(event.get("event", "message")).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.delete("/{job_id}", response_model=JobPublic, responses={404: ERROR_RESPONSES[404]})
async def cancel_training_job(job_id: str, jobs: JobsDep) -> dict:
    """Cancel a running job (its process group is stopped; nothing it half-wrote is served)."""
    return describe(jobs, jobs.cancel(job_id))


def describe(jobs: TrainingJobs, job: Job, log_lines: int = 20) -> dict:
    return {"job_id": job.id, "state": job.state, "options": job.options, "created": job.created,
            "started": job.started, "finished": job.finished, "progress": progress(jobs.events(job)),
            "gate_accuracy": job.gate_accuracy, "version": job.version, "test_accuracy": job.test_accuracy,
            "candidate": job.candidate, "reason": job.reason,
            "log_tail": jobs.log_tail(job, log_lines) if log_lines else []}


def progress(events: list[dict]) -> dict:
    latest = next((e for e in reversed(events) if e.get("event") in ("batch", "epoch")), None)
    if latest is None:
        return {}
    epoch_end = next((e for e in reversed(events) if e.get("event") == "epoch"), {})
    epochs, steps = int(latest.get("epochs") or 1), int(latest.get("steps") or 1)
    step = steps if latest["event"] == "epoch" else int(latest.get("step") or 0)
    done = (int(latest.get("epoch") or 1) - 1 + step / steps) / epochs
    elapsed = float(latest.get("elapsed") or 0.0)
    return {"epoch": latest.get("epoch"), "epochs": epochs, "step": step, "steps": steps,
            "loss": latest.get("loss"), "accuracy": latest.get("accuracy"),
            "val_accuracy": epoch_end.get("val_accuracy"), "elapsed_s": elapsed,
            "eta_s": round(elapsed / done - elapsed, 1) if done > 0 else None}
