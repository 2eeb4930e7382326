"""The hub's HTTP API (service/exchange/hub/): members publish pages, read the merged feed and their stats."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool

from service.api.errors import install_error_handlers
from service.core.errors import Conflict
from service.exchange.feed_pull import PageRefused
from service.exchange.hub.runtime import Hub
from service.exchange.hub.store import HubMember

router = APIRouter()


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_member(request: Request, hub: HubDep) -> HubMember:
    return hub.members.authenticate(request.headers.get("authorization"))


Member = Annotated[HubMember, Depends(get_member)]


@router.get("/healthz")
def healthz(hub: HubDep) -> dict[str, str]:
    return {"status": "ok", "hub": hub.settings.name}


@router.get("/v1/exchange/feed", summary="The merged feed, signed by the hub, from a cursor")
async def feed(hub: HubDep, caller: Member, since: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    return await run_in_threadpool(hub.merged.page, since)


@router.post("/v1/hub/pages", summary="Publish one page of the member's own signed feed")
async def publish(hub: HubDep, caller: Member, page: Annotated[Any, Body()]) -> dict[str, Any]:
    try:
        intake = await run_in_threadpool(hub.intake.accept, caller.name, page)
    except PageRefused as exc:
        raise Conflict("page_refused", str(exc)) from None
    return intake.as_dict()


@router.get("/v1/hub/cursor", summary="Where the hub is in the member's feed: publish from here")
def cursor(hub: HubDep, caller: Member) -> dict[str, Any]:
    return {"member": caller.name, "cursor": hub.intake.cursor(caller.name)}


@router.get("/v1/hub/stats", summary="The member's own statistics")
def stats(hub: HubDep, caller: Member) -> dict[str, Any]:
    return hub.members.stats(caller.name)[0]


def create_hub_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="counterfeit-check exchange hub", version="0.1.0")
    app.state.hub = hub
    install_error_handlers(app)
    app.include_router(router)
    return app
