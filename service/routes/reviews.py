"""Brand policies and review feedback."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from service.auth import Principal, require
from service.db.models import Label, Role
from service.errors import ApiError, not_found
from service.policies import policy_to_dict
from service.validation import validate_brand

router = APIRouter(prefix="/v1", tags=["reviews and policies"])


class PolicyBody(BaseModel):
    counterfeit_threshold: float | None = None
    authentic_threshold: float | None = None
    auto_add_confirmed_counterfeits: bool = False


class ReviewBody(BaseModel):
    label: Label
    note: str | None = Field(None, max_length=1000)


@router.get("/brands/{brand}/policy", summary="A brand's decision thresholds and review automation")
def get_policy(request: Request, principal: Annotated[Principal, Depends(require(Role.brand))], brand: str):
    validate_brand(brand)
    if not principal.may_act_for(brand):
        raise not_found("brand")
    runtime = request.app.state.runtime
    return policy_to_dict(brand, runtime.policies.get(brand), runtime.thresholds_for(brand))


@router.put("/brands/{brand}/policy", summary="Set a brand's thresholds and flags (admin)")
def put_policy(request: Request, _admin: Annotated[Principal, Depends(require(Role.admin))], brand: str, body: PolicyBody):
    validate_brand(brand)
    runtime = request.app.state.runtime
    policy = runtime.policies.put(brand, body.counterfeit_threshold, body.authentic_threshold,
                                  body.auto_add_confirmed_counterfeits)
    return policy_to_dict(brand, policy, runtime.thresholds_for(brand))


@router.post("/checks/{check_id}/review", status_code=201, summary="Confirm a check's true label")
def review_check(request: Request, principal: Annotated[Principal, Depends(require(Role.brand))], check_id: str,
                 body: ReviewBody):
    if not check_id.startswith("chk_"):
        raise ApiError(404, "not_found", "No such check.")
    return request.app.state.runtime.reviews.review(check_id, body.label, principal, body.note)
