"""Brand policies and review feedback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import AdminKey, BrandKey, Policies, Reviews, Scoring
from service.api.routes import StrictRoute
from service.api.schemas import PolicyBody, PolicyOut, ReviewBody, ReviewOut, error_responses
from service.checks.policies import policy_to_dict
from service.core.errors import not_found
from service.core.validation import BRAND_SCHEMA, NO_NUL, validate_brand

router = APIRouter(prefix="/v1", tags=["reviews and policies"], route_class=StrictRoute)
BrandName = Annotated[str, Path(json_schema_extra=BRAND_SCHEMA)]
CheckId = Annotated[str, Path(max_length=40, pattern=NO_NUL)]


@router.get(
    "/brands/{brand}/policy",
    response_model=PolicyOut,
    summary="A brand's decision thresholds and review automation",
    responses=error_responses(404),
)
def get_policy(policies: Policies, scoring: Scoring, principal: BrandKey, brand: BrandName):
    validate_brand(brand)
    if not principal.may_act_for(brand):
        raise not_found("brand")
    return policy_to_dict(brand, policies.get(brand), scoring.thresholds_for(brand))


@router.put(
    "/brands/{brand}/policy",
    response_model=PolicyOut,
    summary="Set a brand's thresholds and flags (admin)",
    responses=error_responses(),
)
def put_policy(policies: Policies, scoring: Scoring, admin: AdminKey, brand: BrandName, body: PolicyBody):
    validate_brand(brand)
    policy = policies.put(
        brand,
        body.counterfeit_threshold,
        body.authentic_threshold,
        body.auto_add_confirmed_counterfeits,
        admin,
    )
    return policy_to_dict(brand, policy, scoring.thresholds_for(brand))


@router.post(
    "/checks/{check_id}/review",
    status_code=201,
    response_model=ReviewOut,
    summary="Confirm a check's true label",
    responses=error_responses(404, 409, 503),
)
def review_check(reviews: Reviews, principal: BrandKey, check_id: CheckId, body: ReviewBody):
    return reviews.review(check_id, body.label, principal, body.note)
