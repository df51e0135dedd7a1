"""Admin: retrain from the running service (a background job in its own process)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.deps import AdminDep, JobsDep, JsonBodyDep, RepositoryDep
from app.schemas import ERROR_RESPONSES, JobPublic, JobsPublic, TrainAccepted, TrainRequest

router = APIRouter(
    prefix="/train",
    tags=["train (admin)"],
    dependencies=[AdminDep],
    responses={
        401: ERROR_RESPONSES[400] | {"description": "missing or wrong token"},
        403: ERROR_RESPONSES[400] | {"description": "admin endpoints disabled"},
    },
)


@router.post(
    "",
    status_code=202,
    response_model=TrainAccepted,
    responses={400: ERROR_RESPONSES[400], 409: ERROR_RESPONSES[400], 415: ERROR_RESPONSES[400]},
    dependencies=[JsonBodyDep],
)
async def start_training(
    body: TrainRequest, request: Request, jobs: JobsDep, repository: RepositoryDep
) -> dict[str, object]:
    """Start a training job (one at a time: 409 with the running job's id otherwise)."""
    options = body.model_dump()
    options["model"] = options["model"] or repository.settings.default_model
    job = await jobs.submit(options)
    return {"job_id": job.id, "status_url": str(request.url_for("get_training_job", job_id=job.id))}


@router.get("", response_model=JobsPublic)
async def list_training_jobs(jobs: JobsDep) -> dict[str, object]:
    """Every training job, newest first (with the last lines of its log)."""
    return {"jobs": [jobs.describe(job, log_lines=5) for job in jobs.newest_first()]}


@router.get("/{job_id}", response_model=JobPublic, responses={404: ERROR_RESPONSES[404]})
async def get_training_job(job_id: str, jobs: JobsDep) -> dict[str, object]:
    """State, progress (epoch, step, loss, accuracy, validation accuracy, elapsed, ETA), result, log tail."""
    return jobs.describe(jobs.get(job_id))


@router.get("/{job_id}/events", responses={200: {"content": {"text/event-stream": {}}}, 404: ERROR_RESPONSES[404]})
async def stream_training_events(job_id: str, jobs: JobsDep) -> StreamingResponse:
    """The job's progress as server-sent events, ending with a `state` event; a comment when idle."""
    job = jobs.get(job_id)

    async def events() -> AsyncIterator[bytes]:
        async for event in jobs.stream(job):
            if event is None:
                yield b": keep-alive\n\n"
            else:
                yield b"event: " + str(event.get("event")).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.delete("/{job_id}", response_model=JobPublic, responses={404: ERROR_RESPONSES[404]})
async def cancel_training_job(job_id: str, jobs: JobsDep) -> dict[str, object]:
    """Cancel a running job (its process group is stopped; nothing it half-wrote is served)."""
    return jobs.describe(jobs.cancel(job_id))
