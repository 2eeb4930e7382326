"""Enforcement cases: a seller's network, and its signed evidence package (service/marketplace/cases.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service.api.deps import Cases, PlatformKey
from service.api.routes import StrictRoute
from service.api.schemas import SellerNetwork, error_responses
from service.core.validation import MARKETPLACE_PATTERN, NO_NUL
from service.marketplace.seller_network import MAX_HOPS

router = APIRouter(prefix="/v1", tags=["cases"], route_class=StrictRoute)
Marketplace = Annotated[str, Path(max_length=100, pattern=MARKETPLACE_PATTERN)]
SellerId = Annotated[str, Path(max_length=200, pattern=NO_NUL)]
Hops = Annotated[int, Query(ge=1, le=MAX_HOPS, description="How many links away from the seller to follow")]


@router.get(
    "/sellers/{marketplace}/{seller_id}/network",
    response_model=SellerNetwork,
    summary="The sellers linked to this one through shared keyed identifiers (kinds only), and peers' reports",
    responses=error_responses(404),
)
async def seller_network(
    cases: Cases, principal: PlatformKey, marketplace: Marketplace, seller_id: SellerId, hops: Hops = 2
):
    return await run_in_threadpool(cases.network, marketplace, seller_id, principal.platform_scope(), hops)


@router.get(
    "/sellers/{marketplace}/{seller_id}/case",
    summary="An enforcement case package (ZIP): the network, every seller's listings, checks, reviews, complaints, "
    "test purchases and photos, a timeline, and a manifest signed with this platform's Ed25519 key",
    responses={
        **error_responses(404, 409),
        200: {"content": {"application/zip": {}}, "description": "The package"},
    },
)
async def case_package(
    cases: Cases, principal: PlatformKey, marketplace: Marketplace, seller_id: SellerId, hops: Hops = 2
):
    data = await run_in_threadpool(cases.package, marketplace, seller_id, principal.platform_scope(), hops)
    name = f"case-{marketplace}-{seller_id}".encode("ascii", "replace").decode()
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
    )
