"""Test purchases: orders placed to test listings, and what the examiner found (service/marketplace/purchases.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Response

from service.api.deps import AnyKey, Config, Purchases
from service.api.routes import StrictRoute, refuse_empty_form_fields
from service.api.routes.checks import refuse_too_many
from service.api.schemas import TestPurchaseForm, TestPurchaseOut, TestPurchasePage, error_responses
from service.core.auth import Principal
from service.core.errors import Forbidden, InvalidInput
from service.core.validation import NO_NUL, validate_brand
from service.db.models import Role
from service.exchange.identifier_kinds import identifier_values
from service.marketplace.listings import ListingFacts
from service.marketplace.purchases import NewTestPurchase

router = APIRouter(prefix="/v1", tags=["test purchases"], route_class=StrictRoute)
PurchaseId = Annotated[str, Path(max_length=40, pattern=NO_NUL)]


def _own_or_given(own: str | None, given: str | None, what: str) -> str:
    """A key's own brand (or platform) unless it names another (403); a key without one must name it."""
    if own is not None:
        if given is not None and given != own:
            raise Forbidden(f"other_{what}", f"This key records test purchases for its own {what} only.")
        return own
    if given is None:
        raise InvalidInput(f"{what}_required", f"Give the {what} this test purchase is for.")
    return validate_brand(given)


def _tenants(principal: Principal, form: TestPurchaseForm) -> tuple[str, str]:
    platform = principal.platform if principal.role is Role.platform else None
    brand = principal.brand if principal.role is Role.brand else None
    return _own_or_given(platform, form.platform, "platform"), _own_or_given(brand, form.brand, "brand")


@router.post(
    "/test-purchases",
    status_code=201,
    dependencies=[Depends(refuse_empty_form_fields)],
    response_model=TestPurchaseOut,
    summary="Record a test purchase; a confirmed counterfeit joins the bank and raises the seller's risk",
    responses={
        200: {"model": TestPurchaseOut, "description": "The same order was recorded before: its record"},
        **error_responses(400, 409, 413, 503),
    },
)
async def record_test_purchase(
    purchases: Purchases,
    settings: Config,
    principal: AnyKey,
    response: Response,
    form: Annotated[TestPurchaseForm, Form()],
):
    images = form.images or []
    refuse_too_many(images, settings.max_listing_images, "a test purchase")
    platform, brand = _tenants(principal, form)
    new = NewTestPurchase(
        platform=platform,
        brand=brand,
        listing=ListingFacts(
            form.listing_id,
            form.seller_id,
            form.marketplace,
            form.title,
            url=form.url,
            identifiers=identifier_values(form),
        ),
        order_reference=form.order_reference,
        ordered_on=form.ordered_on,
        received_on=form.received_on,
        outcome=form.outcome,
        examiner_note=form.examiner_note,
        photos=[(image.filename, await image.read()) for image in images],
        share_signals=form.share_signals,
    )
    answer, created = purchases.record(new, principal)
    if not created:
        response.status_code = 200  # the same order recorded before: its record
    return answer


@router.get(
    "/test-purchases",
    response_model=TestPurchasePage,
    summary="Test purchases: a brand's own, a platform's",
    responses=error_responses(),
)
def list_test_purchases(
    purchases: Purchases,
    principal: AnyKey,
    outcome: Literal["counterfeit_confirmed", "genuine", "not_delivered"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    return {"items": purchases.list(principal, outcome, limit)}


@router.get(
    "/test-purchases/{purchase_id}",
    response_model=TestPurchaseOut,
    summary="A test purchase",
    responses=error_responses(404),
)
def get_test_purchase(purchases: Purchases, principal: AnyKey, purchase_id: PurchaseId):
    return purchases.get(purchase_id, principal)
