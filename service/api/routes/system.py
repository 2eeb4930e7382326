"""Liveness, readiness, what the service is running, and Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from index.regions import reference_regions
from service.api.deps import AnyKey, RuntimeDep
from service.api.routes import StrictRoute
from service.api.schemas import Health, Info, Ready, error_responses
from service.core.auth import authenticate
from service.core.errors import Forbidden
from service.db.models import Reference, Role

router = APIRouter(tags=["system"], route_class=StrictRoute)


# Probes are coroutines that touch neither the database nor a thread pool, so they answer at once
# even when every worker thread is busy: an orchestrator must not restart a replica for being loaded.
@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz():
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Model and index are loaded",
    responses={503: {"model": Ready, "description": "Still starting"}},
)
async def readyz(request: Request):
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None or runtime.serving.index_sync.generation is None:
        return JSONResponse({"status": "starting", "index_size": None}, status_code=503)
    return {"status": "ready", "index_size": len(runtime.serving.index_sync.index)}


@router.get(
    "/v1/info",
    response_model=Info,
    response_model_exclude_unset=True,
    summary="Model, index and reference counts",
    responses=error_responses(),
)
def info(runtime: RuntimeDep, principal: AnyKey):
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
    index = {
        "generation": sync.generation.number,
        "type": sync.index.index_type,
        "applied_change_seq": sync.applied_seq,
    }
    if not principal.brand_scope():  # a brand sees its own counts, not the size of everyone's bank
        index["size"] = len(sync.index)
        index["vectors"] = sync.index.vector_count  # with the references' region vectors
    return {
        "model": {
            **model.as_dict(),
            "runtime": serving.runner.runtime,
            "warning": "RANDOM TEST-ONLY WEIGHTS: verdicts are meaningless" if model.is_test_only else None,
            "min_match_similarity": serving.min_match_similarity,
            "min_distinctiveness": serving.min_distinctiveness,
            "profile": serving.profile.to_dict() if serving.profile else None,
        },
        "index": index,
        "regions": {
            "query": ["whole"]
            if serving.runner.embedder.decodes_on_device  # the device embeds the whole photo
            else [r.name for r in serving.prepare_spec.regions],
            "reference": [r.name for r in reference_regions(sync.reference_regions)],
        },
        "references": counts,
        "scorer": runtime.scoring.scorer.name,
    }


def _may_scrape(runtime, authorization: str | None) -> None:
    """COUNTERFEIT_METRICS_TOKEN or an admin key; the figures are operators', never a tenant's."""
    token = runtime.settings.metrics_token
    scheme, _, presented = (authorization or "").partition(" ")
    if (
        token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())
    ):
        return
    with runtime.sessions() as session:
        principal = authenticate(session, authorization)
    if principal.role is not Role.admin:
        raise Forbidden("forbidden", "Metrics need COUNTERFEIT_METRICS_TOKEN or an admin key.")


@router.get(
    "/metrics",
    summary="Prometheus metrics (metrics token or admin key)",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        },
        **error_responses(),
    },
)
async def metrics(request: Request, runtime: RuntimeDep):
    await run_in_threadpool(_may_scrape, runtime, request.headers.get("authorization"))
    sync = runtime.serving.index_sync
    runtime.metrics.index_size.labels(str(sync.generation.number)).set(sync.index.vector_count)
    runtime.metrics.decode_memory.set(runtime.decode_budget.in_use)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
