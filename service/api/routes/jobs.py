"""Operators' batch jobs: reindex into a new generation, watch it and the look-alike fits, cancel them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from service.api.deps import AdminKey, Jobs, RuntimeDep
from service.api.routes import StrictRoute
from service.api.schemas import JobAccepted, JobOut, JobPage, ReindexBody, error_responses
from service.core.errors import InvalidInput
from service.core.validation import NO_NUL
from service.jobs.reindex import Reindexer, ReindexParams, params_dict
from service.jobs.store import job_to_dict

router = APIRouter(prefix="/v1", tags=["jobs"], route_class=StrictRoute)
JobId = Annotated[str, Path(max_length=40, pattern=NO_NUL)]


@router.post(
    "/reindex",
    status_code=202,
    response_model=JobAccepted,
    summary="Re-embed every reference into a new index generation",
    responses=error_responses(409),
)
def start_reindex(runtime: RuntimeDep, admin: AdminKey, body: Annotated[ReindexBody | None, Body()] = None):
    body = body or ReindexBody()
    try:
        params = ReindexParams(
            body.model or runtime.serving.runner.info.spec, body.index_type, body.engine, body.ray_address
        ).validate()
    except ValueError as exc:
        raise InvalidInput("invalid_reindex", str(exc)) from None
    reindexer = Reindexer(runtime.settings, runtime.sessions, runtime.blobs, runtime.jobs)
    job = runtime.launcher.launch(
        "reindex", params_dict(params), lambda job_id: reindexer.run(job_id, params), admin
    )
    return {"job_id": job.id, "state": job.state}


@router.get(
    "/jobs",
    response_model=JobPage,
    summary="Recent jobs, newest first (reindex, lookalike)",
    responses=error_responses(),
)
def list_jobs(
    jobs: Jobs,
    _admin: AdminKey,
    kind: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    return {"items": [job_to_dict(job) for job in jobs.recent(kind, limit)]}


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A job's state and progress",
    responses=error_responses(404),
)
def get_job(jobs: Jobs, _admin: AdminKey, job_id: JobId):
    return job_to_dict(jobs.get(job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=error_responses(404),
    summary="Cancel a job (it stops after its current shard; nothing is swapped in). The job stays listed.",
)
def cancel_job(jobs: Jobs, admin: AdminKey, job_id: JobId):
    return job_to_dict(jobs.request_cancel(job_id, admin))
