"""Operators' batch jobs: reindex into a new generation, watch it, cancel it."""
from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.auth import Principal, require
from service.db.models import Role
from service.errors import ApiError
from service.jobs import job_to_dict
from service.reindex import Reindexer, ReindexParams, params_dict

router = APIRouter(prefix="/v1", tags=["jobs"])
Admin = Annotated[Principal, Depends(require(Role.admin))]


class ReindexRequest(BaseModel):
    model: str | None = None  # default: the model being served
    index_type: str = "auto"
    engine: str = "local"
    ray_address: str | None = None


@router.post("/reindex", status_code=202, summary="Re-embed every reference into a new index generation")
def start_reindex(request: Request, _admin: Admin, body: ReindexRequest | None = None):
    runtime = request.app.state.runtime
    body = body or ReindexRequest()
    try:
        params = ReindexParams(body.model or runtime.serving.runner.info.spec, body.index_type, body.engine,
                               body.ray_address).validate()
    except ValueError as exc:
        raise ApiError(422, "invalid_reindex", str(exc)) from None
    job = runtime.jobs.create("reindex", params_dict(params))
    reindexer = Reindexer(runtime.settings, runtime.sessions, runtime.blobs, runtime.jobs)
    threading.Thread(target=reindexer.run, args=(job.id, params), name=f"reindex-{job.id}", daemon=True).start()
    return JSONResponse({"job_id": job.id, "state": job.state}, status_code=202)


@router.get("/jobs/{job_id}", summary="A job's state and progress")
def get_job(request: Request, _admin: Admin, job_id: str):
    return job_to_dict(request.app.state.runtime.jobs.get(job_id))


@router.delete("/jobs/{job_id}", summary="Cancel a job (it stops after its current shard; nothing is swapped in)")
def cancel_job(request: Request, _admin: Admin, job_id: str):
    return job_to_dict(request.app.state.runtime.jobs.request_cancel(job_id))
