"""Webhooks: brands and platforms register endpoints for events; deliveries and their attempts are visible."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from service.api.deps import AnyKey, Webhooks
from service.api.routes import StrictRoute
from service.api.schemas import (
    DeliveryOut,
    DeliveryPage,
    RotateWebhookBody,
    WebhookBody,
    WebhookOut,
    WebhookPage,
    error_responses,
)

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=StrictRoute)
WebhookId = Annotated[str, Path(max_length=40, pattern=r"^whk_[0-9a-f]{16}$")]


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookOut,
    responses=error_responses(),
    summary="Register an endpoint for events (a brand key: its own brand's events only); the secret is shown once",
)
def create_webhook(webhooks: Webhooks, principal: AnyKey, body: WebhookBody):
    return webhooks.create(body.url, body.events, principal)


@router.get("/webhooks", response_model=WebhookPage, responses=error_responses(), summary="Your endpoints")
def list_webhooks(webhooks: Webhooks, principal: AnyKey):
    return {"items": [webhooks.describe(hook) for hook in webhooks.mine(principal)]}


@router.delete(
    "/webhooks/{webhook_id}",
    response_model=WebhookOut,
    responses=error_responses(404),
    summary="Remove an endpoint (its pending deliveries are not sent)",
)
def delete_webhook(webhooks: Webhooks, principal: AnyKey, webhook_id: WebhookId):
    return webhooks.delete(webhook_id, principal)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookOut,
    responses=error_responses(404),
    summary="A new signing secret; the previous one also signs for the overlap",
)
def rotate_webhook_secret(
    webhooks: Webhooks,
    principal: AnyKey,
    webhook_id: WebhookId,
    body: Annotated[RotateWebhookBody | None, Body()] = None,
):
    return webhooks.rotate(webhook_id, principal, (body or RotateWebhookBody()).overlap_hours)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=error_responses(404),
    summary="Recent deliveries with their attempts, newest first",
)
def list_deliveries(
    webhooks: Webhooks,
    principal: AnyKey,
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
):
    return {"items": webhooks.deliveries(webhook_id, principal, limit)}


@router.post(
    "/webhooks/{webhook_id}/ping",
    status_code=201,
    response_model=DeliveryOut,
    responses=error_responses(404),
    summary="Send a signed test event (ping) to the endpoint now",
)
def ping_webhook(webhooks: Webhooks, principal: AnyKey, webhook_id: WebhookId):
    return webhooks.ping(webhook_id, principal)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=201,
    response_model=DeliveryOut,
    responses=error_responses(404, 409),
    summary="Send a past delivery again, as a new delivery",
)
def redeliver(
    webhooks: Webhooks,
    principal: AnyKey,
    webhook_id: WebhookId,
    delivery_id: Annotated[str, Path(max_length=40, pattern=r"^dlv_[0-9a-f]{20}$")],
):
    return webhooks.redeliver(webhook_id, delivery_id, principal)
