"""Transparency reports per brand, platform and period: JSON, CSV or PDF (service/marketplace/reports.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service.api.deps import AnyKey, ReportsDep
from service.api.routes import StrictRoute
from service.api.schemas import ReportOut, error_responses
from service.core.auth import Principal
from service.core.errors import not_found
from service.core.validation import BRAND_SCHEMA, validate_brand
from service.db.models import Role
from service.marketplace.report_pdf import report_pdf
from service.marketplace.reports import period, report_csv

router = APIRouter(prefix="/v1", tags=["reports"], route_class=StrictRoute)
BrandName = Annotated[str, Path(json_schema_extra=BRAND_SCHEMA)]


def report_scope(principal: Principal, brand: str, platform: str | None) -> tuple[str, str | None]:
    """(brand, platform) the caller may see: a brand its own (on one platform, or all: None), a platform its own
    tenant's, an admin any."""
    validate_brand(brand)
    if principal.role is Role.brand and principal.brand != brand:
        raise not_found("brand")
    if principal.role is Role.platform:
        if platform is not None and platform != principal.platform:
            raise not_found("platform")
        return brand, principal.platform
    return brand, validate_brand(platform) if platform is not None else None


@router.get(
    "/reports/brands/{brand}",
    response_model=ReportOut,
    summary="A transparency report: what a platform did about a brand's counterfeits in a period (JSON, CSV, PDF)",
    responses={
        **error_responses(404),
        200: {"content": {"text/csv": {}, "application/pdf": {}}, "description": "The report"},
    },
)
async def brand_report(
    reports: ReportsDep,
    principal: AnyKey,
    brand: BrandName,
    platform: Annotated[str | None, Query(json_schema_extra=BRAND_SCHEMA)] = None,
    start: date | None = None,
    end: date | None = None,
    format: Literal["json", "csv", "pdf"] = "json",
):
    brand, platform = report_scope(principal, brand, platform)
    start, end = period(start, end)
    report = await run_in_threadpool(reports.brand_report, brand, platform, start, end)
    name = f"report-{brand}-{platform or 'all-platforms'}-{start}-{end}"
    if format == "csv":
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "pdf":
        return Response(
            await run_in_threadpool(report_pdf, report),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    return report
