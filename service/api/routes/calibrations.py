"""Calibrated scorers: list them, activate one, roll back (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import AdminKey, RuntimeDep, Scoring
from service.api.routes import StrictRoute
from service.api.schemas import CalibrationPage, error_responses
from service.core.errors import not_found

router = APIRouter(prefix="/v1/calibrations", tags=["calibrations"], route_class=StrictRoute)
Version = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


def _page(scoring) -> dict:
    scoring.refresh()  # this process switches at once; others within their poll
    return {"items": scoring.calibrations.versions(), "scorer": scoring.scorer.name}


@router.get("", response_model=CalibrationPage, responses=error_responses(), summary="Saved calibrations")
def list_calibrations(scoring: Scoring, admin: AdminKey):
    return _page(scoring)


@router.post(
    "/{version}/activate",
    response_model=CalibrationPage,
    responses=error_responses(404),
    summary="Make a saved calibration the scorer checks use",
)
def activate(runtime: RuntimeDep, scoring: Scoring, admin: AdminKey, version: Version):
    try:
        scoring.calibrations.activate(version)
    except KeyError:
        raise not_found("calibration") from None
    runtime.audit.record(admin, "calibration.activate", None, version)
    return _page(scoring)


@router.post(
    "/rollback",
    response_model=CalibrationPage,
    responses=error_responses(),
    summary="Go back to the calibration active before (or to the default scorer)",
)
def rollback(runtime: RuntimeDep, scoring: Scoring, admin: AdminKey):
    runtime.audit.record(admin, "calibration.rollback", None, scoring.calibrations.rollback() or "default")
    return _page(scoring)
