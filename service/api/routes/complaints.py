"""Complaints: brands file notices about listings, platforms decide them (service/marketplace/complaints.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query

from service.api.deps import AnyKey, BrandKey, Complaints, Config, PlatformKey
from service.api.routes import StrictRoute, refuse_empty_form_fields
from service.api.routes.checks import refuse_too_many
from service.api.schemas import (
    ComplaintForm,
    ComplaintOut,
    ComplaintPage,
    ComplaintPolicyBody,
    ComplaintPolicyOut,
    CounterNoticeBody,
    DecisionBody,
    error_responses,
)
from service.core.auth import Principal
from service.core.errors import Forbidden, not_found
from service.core.validation import BRAND_SCHEMA, NO_NUL, validate_brand
from service.db.models import Role
from service.marketplace.complaints import ComplaintPolicy, NewComplaint
from service.marketplace.listings import ListingFacts

router = APIRouter(prefix="/v1", tags=["complaints"], route_class=StrictRoute)
ComplaintId = Annotated[str, Path(max_length=40, pattern=NO_NUL)]
PlatformName = Annotated[str, Path(json_schema_extra=BRAND_SCHEMA)]


def _complainant(principal: Principal, brand: str | None) -> str:
    if principal.role is Role.brand:
        if brand is not None and brand != principal.brand:
            raise Forbidden("other_brand", "A brand key files complaints for its own brand only.")
        return principal.brand
    if brand is None:
        raise Forbidden("brand_required", "An admin files a complaint for a brand: give brand.")
    return validate_brand(brand)


@router.post(
    "/complaints",
    status_code=201,
    dependencies=[Depends(refuse_empty_form_fields)],
    response_model=ComplaintOut,
    summary="File a complaint about a listing with a platform: triaged at once into the fast or normal lane",
    responses=error_responses(400, 408, 413, 503),
)
async def file_complaint(
    complaints: Complaints, settings: Config, principal: BrandKey, form: Annotated[ComplaintForm, Form()]
):
    images = form.images or []
    refuse_too_many(images, settings.max_listing_images, "a complaint")
    new = NewComplaint(
        platform=validate_brand(form.platform),
        brand=_complainant(principal, form.brand),
        claim=form.claim,
        statement=form.statement,
        listing=ListingFacts(form.listing_id, form.seller_id, form.marketplace, form.title, url=form.url),
        reference_ids=tuple(form.reference_ids or ()),
        photos=[(image.filename, await image.read()) for image in images],
    )
    return await complaints.file(new, principal)


@router.get(
    "/complaints",
    response_model=ComplaintPage,
    summary="Complaints: a brand's own, a platform's queue (open first, fast lane first, earliest due first)",
    responses=error_responses(),
)
def list_complaints(
    complaints: Complaints,
    principal: AnyKey,
    state: Literal["open", "upheld", "rejected"] | None = None,
    lane: Literal["fast", "normal"] | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    return {"items": complaints.list(principal, state, lane, overdue, limit)}


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintOut,
    summary="A complaint with its triage, service level, decision and history",
    responses=error_responses(404),
)
def get_complaint(complaints: Complaints, principal: AnyKey, complaint_id: ComplaintId):
    return complaints.get(complaint_id, principal)


@router.post(
    "/complaints/{complaint_id}/decision",
    response_model=ComplaintOut,
    summary="Uphold (with the action taken) or reject (with a reason) an open complaint",
    responses=error_responses(404, 409),
)
def decide_complaint(
    complaints: Complaints, principal: PlatformKey, complaint_id: ComplaintId, body: DecisionBody
):
    return complaints.decide(complaint_id, body.outcome, body.action, body.reason, principal)


@router.post(
    "/complaints/{complaint_id}/counter-notice",
    response_model=ComplaintOut,
    summary="The seller's counter-notice: reopens an upheld complaint and withdraws what the uphold added",
    responses=error_responses(404, 409),
)
def counter_notice(
    complaints: Complaints, principal: PlatformKey, complaint_id: ComplaintId, body: CounterNoticeBody
):
    return complaints.counter_notice(complaint_id, body.statement, principal)


def _own_platform(principal: Principal, platform: str) -> str:
    validate_brand(platform)
    if principal.role is Role.platform and principal.platform != platform:
        raise not_found("platform")
    return platform


@router.get(
    "/platforms/{platform}/complaint-policy",
    response_model=ComplaintPolicyOut,
    summary="A platform's fast-track bar and service levels",
    responses=error_responses(404),
)
def get_complaint_policy(complaints: Complaints, principal: PlatformKey, platform: PlatformName):
    policy = complaints.policy(_own_platform(principal, platform))
    return {"platform": platform, **policy.__dict__}


@router.put(
    "/platforms/{platform}/complaint-policy",
    response_model=ComplaintPolicyOut,
    summary="Set a platform's fast-track bar and service levels (the platform itself, or an admin)",
    responses=error_responses(404),
)
def put_complaint_policy(
    complaints: Complaints, principal: PlatformKey, platform: PlatformName, body: ComplaintPolicyBody
):
    policy = ComplaintPolicy(body.fast_track_bar, body.fast_sla_hours, body.normal_sla_hours)
    complaints.put_policy(_own_platform(principal, platform), policy, principal)
    return {"platform": platform, **policy.__dict__}
