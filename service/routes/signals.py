"""Cross-platform sharing of known-fake signals (signed PDQ bundles, never images)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from service.auth import Principal, require
from service.db.models import Role
from service.errors import not_found
from service.validation import validate_brand

router = APIRouter(prefix="/v1/signals", tags=["signal sharing"])


@router.get("/export", summary="A signed bundle of a brand's shareable known-fake hashes")
def export_signals(request: Request, principal: Annotated[Principal, Depends(require(Role.brand))], brand: str | None = None):
    brand = validate_brand(brand or principal.brand or "")
    if not principal.may_act_for(brand):
        raise not_found("brand")
    return request.app.state.runtime.signal_sharing.export(brand)


@router.post("/import", summary="Import a bundle from a trusted issuer (replaces its previous one for the brand)")
def import_signals(request: Request, _admin: Annotated[Principal, Depends(require(Role.admin))],
                   bundle: Annotated[dict[str, Any], Body()]):
    return request.app.state.runtime.signal_sharing.import_bundle(bundle)
