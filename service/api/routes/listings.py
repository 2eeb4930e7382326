"""Listings and sellers: a listing's photos checked together, sellers ranked by risk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query

from service.api.deps import AnyKey, Config, Listings, PlatformKey, Sellers
from service.api.routes import StrictRoute, refuse_empty_form_fields
from service.api.routes.checks import check_params, refuse_too_many
from service.api.schemas import (
    ListingCheckForm,
    ListingRecord,
    ListingResult,
    SellerOut,
    SellerPage,
    error_responses,
)
from service.core.errors import Forbidden, not_found
from service.core.validation import BRAND_SCHEMA, MARKETPLACE_PATTERN, NO_NUL, validate_brand
from service.exchange.identifier_kinds import identifier_values
from service.marketplace.listings import ListingFacts

router = APIRouter(prefix="/v1", tags=["listings"], route_class=StrictRoute)
Marketplace = Annotated[str, Path(max_length=100, pattern=MARKETPLACE_PATTERN)]
SellerId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]


@router.post(
    "/listings/check",
    dependencies=[Depends(refuse_empty_form_fields)],
    response_model=ListingResult,
    summary="Check a listing: its photos together, its seller's record and its price",
    responses=error_responses(400, 408, 413, 503),
)
async def check_listing(
    listings: Listings, settings: Config, principal: PlatformKey, form: Annotated[ListingCheckForm, Form()]
):
    brand, k = check_params(settings, form.brand, form.k, listings.checker)
    refuse_too_many(form.images, settings.max_listing_images, "a listing check")
    facts = ListingFacts(
        form.listing_id,
        form.seller_id,
        form.marketplace,
        form.title,
        form.price,
        form.currency,
        form.url,
        identifier_values(form),
    )
    payloads = [(image.filename, await image.read()) for image in form.images]
    return await listings.check(payloads, facts, brand, k, principal.key_id, principal.request_id)


@router.get(
    "/listings/{listing_check_id}",
    response_model=ListingRecord,
    responses=error_responses(404),
    summary="A stored listing check (the id exports, scans and webhooks hand out) with its photos' checks",
)
def get_listing(
    listings: Listings,
    principal: AnyKey,
    listing_check_id: Annotated[str, Path(max_length=40, pattern=NO_NUL)],
):
    return listings.get(listing_check_id, principal)


@router.get(
    "/sellers/{marketplace}/{seller_id}",
    response_model=SellerOut,
    responses=error_responses(404),
    summary="A seller's record: listings, likely and confirmed counterfeits, risk, brands affected",
)
def get_seller(sellers: Sellers, principal: AnyKey, marketplace: Marketplace, seller_id: SellerId):
    record = sellers.get(marketplace, seller_id, principal.brand_scope(), platform=principal.platform_scope())
    if record is None:
        raise not_found("seller")
    return record


@router.get(
    "/sellers",
    response_model=SellerPage,
    responses=error_responses(),
    summary="Sellers by risk, highest first (a brand key: through its own brand's listings; a platform key: "
    "its own platform's)",
)
def list_sellers(
    sellers: Sellers,
    principal: AnyKey,
    brand: Annotated[str | None, Query(json_schema_extra=BRAND_SCHEMA)] = None,
    min_risk: Annotated[float, Query(ge=0, le=1)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    scope = principal.brand_scope()
    if brand is not None:
        brand = validate_brand(brand)
        if scope and brand != scope:
            raise Forbidden("other_brand", "A brand key sees its own brand's sellers only.")
    return {"items": sellers.ranked(scope or brand, min_risk, limit, principal.platform_scope())}
