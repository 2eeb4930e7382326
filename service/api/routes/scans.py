"""Catalogue scans: a feed of listings checked in bulk as a job; results per listing, per seller, exported."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import PlatformKey, RuntimeDep, Scans
from service.api.routes import StrictRoute, refuse_empty_form_fields
from service.api.routes.checks import check_params
from service.api.schemas import (
    ScanAccepted,
    ScanForm,
    ScanOut,
    ScanPage,
    ScanResultPage,
    ScanSellerPage,
    Verdict,
    error_responses,
)
from service.core.validation import NO_NUL
from service.jobs.scan_feed import feed_format
from service.jobs.scans import ScanParams

router = APIRouter(prefix="/v1/scans", tags=["scans"], route_class=StrictRoute)
ScanId = Annotated[str, Path(max_length=40, pattern=NO_NUL)]


@router.post(
    "",
    status_code=202,
    response_model=ScanAccepted,
    dependencies=[Depends(refuse_empty_form_fields)],
    summary="Scan a feed of listings (JSONL, CSV or Parquet) as a job",
    responses=error_responses(409, 413),
)
async def start_scan(runtime: RuntimeDep, principal: PlatformKey, form: Annotated[ScanForm, Form()]):
    brand, k = check_params(runtime.settings, form.brand, form.k, runtime.checker)
    fmt = feed_format(form.feed.filename, form.format)
    data = await form.feed.read()
    archive = await form.images.read() if form.images is not None else None
    scan_id = await run_in_threadpool(
        runtime.scans.create, data, fmt, ScanParams(brand, k), principal, form.feed.filename, archive
    )
    runtime.start_scan(scan_id)
    return {"scan_id": scan_id, "state": "queued", "listings": runtime.jobs.get(scan_id).params["listings"]}


@router.get(
    "",
    response_model=ScanPage,
    responses=error_responses(),
    summary="The caller's scans, newest first (a platform key: its own tenant's)",
)
def list_scans(scans: Scans, principal: PlatformKey, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    return {"items": scans.list(principal, limit)}


@router.get(
    "/{scan_id}",
    response_model=ScanOut,
    responses=error_responses(404),
    summary="A scan's progress (done, total, rate, ETA) and counts by state and verdict",
)
def get_scan(scans: Scans, principal: PlatformKey, scan_id: ScanId):
    return scans.get(scan_id, principal)


@router.get(
    "/{scan_id}/results",
    response_model=ScanResultPage,
    responses=error_responses(404),
    summary="The scan's listings in feed order, filtered by verdict or state",
)
def scan_results(
    scans: Scans,
    principal: PlatformKey,
    scan_id: ScanId,
    verdict: Verdict | None = None,
    state: Literal["pending", "done", "failed"] | None = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    items = scans.results(scan_id, verdict, state, after, limit, principal)
    return {"items": items, "next_after": items[-1]["row"] if len(items) == limit else None}


@router.get(
    "/{scan_id}/sellers",
    response_model=ScanSellerPage,
    responses=error_responses(404),
    summary="Per seller: listings scanned, likely counterfeit ones, the highest probability (worst first)",
)
def scan_sellers(scans: Scans, principal: PlatformKey, scan_id: ScanId):
    return {"items": scans.sellers(scan_id, principal)}


@router.get(
    "/{scan_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "Every listing's outcome",
        },
        **error_responses(404),
    },
    summary="Every listing's outcome as CSV or Parquet",
)
def export_scan(
    scans: Scans, principal: PlatformKey, scan_id: ScanId, format: Literal["csv", "parquet"] = "csv"
):
    body = scans.export(scan_id, format, principal)
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{scan_id}.{format}"'}
    )


@router.post(
    "/{scan_id}/cancel",
    response_model=ScanOut,
    responses=error_responses(404),
    summary="Stop a scan after the listings in flight; finished ones stay",
)
def cancel_scan(scans: Scans, principal: PlatformKey, scan_id: ScanId):
    return scans.cancel(scan_id, principal)
