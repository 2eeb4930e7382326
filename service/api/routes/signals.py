"""Cross-platform sharing of known-fake signals: signed PDQ bundles and the signed pull feed (never images)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import AdminKey, BrandKey, ExchangeKey, Feed, Sharing
from service.api.routes import StrictRoute
from service.api.schemas import FeedPage, SignalBundle, SignalImportResult, error_responses
from service.core.errors import not_found
from service.core.validation import BRAND_SCHEMA, validate_brand

router = APIRouter(prefix="/v1/signals", tags=["signal sharing"], route_class=StrictRoute)


@router.get(
    "/export",
    response_model=SignalBundle,
    summary="A signed bundle of a brand's shareable known-fake hashes",
    responses=error_responses(404, 409),
)
def export_signals(
    sharing: Sharing, principal: BrandKey, brand: Annotated[str, Query(json_schema_extra=BRAND_SCHEMA)]
):
    validate_brand(brand)
    if not principal.may_act_for(brand):
        raise not_found("brand")
    return sharing.export(brand)


@router.post(
    "/import",
    response_model=SignalImportResult,
    responses=error_responses(413),
    summary="Import a bundle from a trusted issuer (replaces its previous one for the brand)",
)
def import_signals(sharing: Sharing, admin: AdminKey, bundle: SignalBundle):
    return sharing.import_bundle(bundle.model_dump(), admin)


exchange = APIRouter(prefix="/v1/exchange", tags=["signal sharing"], route_class=StrictRoute)


@exchange.get(
    "/feed",
    response_model=FeedPage,
    responses=error_responses(409),
    summary="This platform's signed exchange feed after a cursor (peers pull it with an exchange key)",
)
def exchange_feed(
    feed: Feed,
    peer: ExchangeKey,
    since: Annotated[int, Query(ge=0, le=2**63 - 1, description="The last seq already taken (0: all)")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=5000)] = None,
):
    return feed.page(since, limit)
