"""Brand policies and review feedback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import BrandKey, Policies, Reviews, Scoring
from service.api.routes import StrictRoute
from service.api.schemas import PolicyBody, PolicyOut, ReviewBody, ReviewOut, error_responses
from service.checks.policies import policy_to_dict
from service.core.errors import Forbidden, not_found
from service.core.validation import BRAND_SCHEMA, NO_NUL, validate_brand
from service.db.models import Role

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
    summary="Set a brand's thresholds (admin) and flags (the brand's own key too)",
    responses=error_responses(404),
)
def put_policy(policies: Policies, scoring: Scoring, principal: BrandKey, brand: BrandName, body: PolicyBody):
    validate_brand(brand)
    if not principal.may_act_for(brand):
        raise not_found("brand")
    if principal.role is not Role.admin:
        _refuse_threshold_change(policies.get(brand), body)
    policy = policies.put(
        brand,
        body.counterfeit_threshold,
        body.authentic_threshold,
        body.auto_add_confirmed_counterfeits,
        principal,
    )
    return policy_to_dict(brand, policy, scoring.thresholds_for(brand))


def _refuse_threshold_change(current, body: PolicyBody) -> None:
    """A brand decides whether its checked photos are kept (and confirmed fakes join its bank); the thresholds
    decide what platforms act on against sellers, so they stay the operator's: a brand sends them unchanged."""
    stored = (current.counterfeit_threshold, current.authentic_threshold) if current else (None, None)
    if (body.counterfeit_threshold, body.authentic_threshold) != stored:
        raise Forbidden(
            "thresholds_are_the_operators",
            "A brand sets auto_add_confirmed_counterfeits; its decision thresholds are set by the operator "
            "(send the current ones unchanged).",
        )


@router.post(
    "/checks/{check_id}/review",
    status_code=201,
    response_model=ReviewOut,
    summary="Confirm a check's true label",
    responses=error_responses(404, 409, 503),
)
def review_check(reviews: Reviews, principal: BrandKey, check_id: CheckId, body: ReviewBody):
    return reviews.review(check_id, body.label, principal, body.note)
