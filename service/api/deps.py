"""Typed FastAPI dependencies: the runtime, and the caller with its role checked and rate limited."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.checks.active_scoring import ActiveScoring
from service.checks.checker import Checker
from service.checks.history import CheckHistory
from service.checks.policies import PolicyStore
from service.checks.reviews import ReviewService
from service.core.auth import Principal, authenticate, rate_limit_error
from service.core.errors import Forbidden
from service.core.fetch import SafeFetcher
from service.db.models import Role
from service.exchange.feed import FeedPublisher
from service.exchange.signals import SignalSharing
from service.exchange.webhooks import WebhookRegistry
from service.jobs.scans import ScanService
from service.jobs.store import JobStore
from service.marketplace.cases import CaseBuilder
from service.marketplace.complaints import ComplaintService
from service.marketplace.listings import ListingChecker
from service.marketplace.purchases import TestPurchases
from service.marketplace.reports import Reports
from service.marketplace.sellers import SellerRecords
from service.references.registry import ReferenceRegistry
from service.runtime import Runtime
from service.settings import Settings


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _part(name: str):
    """A dependency on one of the runtime's services, so a route names what it uses instead of the runtime."""

    def dependency(runtime: RuntimeDep):
        return getattr(runtime, name)

    dependency.__name__ = f"get_{name}"
    return Depends(dependency)


Registry = Annotated[ReferenceRegistry, _part("registry")]
Jobs = Annotated[JobStore, _part("jobs")]
Scans = Annotated[ScanService, _part("scans")]
Webhooks = Annotated[WebhookRegistry, _part("webhooks")]
Sellers = Annotated[SellerRecords, _part("sellers")]
Policies = Annotated[PolicyStore, _part("policies")]
Checks = Annotated[Checker, _part("checker")]
History = Annotated[CheckHistory, _part("check_history")]
Listings = Annotated[ListingChecker, _part("listings")]
Complaints = Annotated[ComplaintService, _part("complaints")]
Purchases = Annotated[TestPurchases, _part("test_purchases")]
ReportsDep = Annotated[Reports, _part("reports")]
Cases = Annotated[CaseBuilder, _part("cases")]
Reviews = Annotated[ReviewService, _part("reviews")]
Sharing = Annotated[SignalSharing, _part("signal_sharing")]
Feed = Annotated[FeedPublisher, _part("feed")]
Fetcher = Annotated[SafeFetcher, _part("fetcher")]
Config = Annotated[Settings, _part("settings")]
Scoring = Annotated[ActiveScoring, _part("scoring")]


def require(*roles: Role):
    """The caller, if its key is valid, its role one of ``roles`` (admin always passes) and within its rate."""
    allowed = set(roles) | {Role.admin}

    def dependency(request: Request, runtime: RuntimeDep) -> Principal:
        with runtime.sessions() as session:
            principal = authenticate(session, request.headers.get("authorization"), request.state.request_id)
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(
                "forbidden",
                f"This endpoint needs one of the roles: {names}; your key is '{principal.role.value}'.",
            )
        settings = runtime.settings
        rate = {
            Role.admin: settings.rate_limit_admin,
            Role.brand: settings.rate_limit_brand,
            Role.platform: settings.rate_limit_platform,
            Role.exchange: settings.rate_limit_platform,
        }[principal.role]
        wait = runtime.rate_limits.take(
            principal.key_id or "", rate, max(1.0, rate * settings.rate_limit_burst_seconds)
        )
        if wait:
            runtime.metrics.rate_limited.labels(principal.role.value).inc()
            raise rate_limit_error(wait)
        return principal

    return dependency


AdminKey = Annotated[Principal, Depends(require(Role.admin))]
BrandKey = Annotated[Principal, Depends(require(Role.brand))]  # a brand key, or admin
PlatformKey = Annotated[Principal, Depends(require(Role.platform))]  # a platform key, or admin
ExchangeKey = Annotated[Principal, Depends(require(Role.exchange))]  # a peer platform's key, or admin
AnyKey = Annotated[
    Principal, Depends(require(Role.brand, Role.platform))
]  # a brand's or platform's key, or admin
EveryKey = Annotated[
    Principal, Depends(require(*Role))
]  # any valid key, an exchange peer's too (its own key's rotation)
