"""Liveness, readiness and what the service is running."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from service.auth import Principal, require
from service.db.models import Reference, Role

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="The process is alive")
def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="Model and index are loaded")
def readyz(request: Request):
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None or runtime.serving.index_sync.generation is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return {"status": "ready", "index_size": len(runtime.serving.index_sync.index)}


@router.get("/v1/info", summary="Model, index and reference counts")
def info(request: Request, principal: Annotated[Principal, Depends(require(Role.brand, Role.platform))]):
    runtime = request.app.state.runtime
    serving = runtime.serving
    model = serving.runner.info
    query = select(Reference.brand, Reference.label, func.count()).where(Reference.deleted_at.is_(None))
    if principal.brand_scope():
        query = query.where(Reference.brand == principal.brand_scope())
    counts: dict[str, dict[str, int]] = {}
    with runtime.sessions() as session:
        for brand, label, count in session.execute(query.group_by(Reference.brand, Reference.label)):
            counts.setdefault(brand, {"authentic": 0, "counterfeit": 0})[label.value] = count
    sync = serving.index_sync
    index = {"generation": sync.generation.number, "type": sync.index.index_type, "applied_change_seq": sync.applied_seq}
    if not principal.brand_scope():  # a brand sees its own counts, not the size of everyone's bank
        index["size"] = len(sync.index)
    return {
        "model": {**model.as_dict(), "warning": "RANDOM TEST-ONLY WEIGHTS: verdicts are meaningless" if model.is_test_only else None},
        "index": index,
        "references": counts,
        "scorer": runtime.scorer.name,
    }


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request):
    runtime = request.app.state.runtime
    sync = runtime.serving.index_sync
    runtime.metrics.index_size.labels(str(sync.generation.number)).set(len(sync.index))
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
