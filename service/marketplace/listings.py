"""Check a marketplace listing: its photos in one model pass, combined with its seller's record and price.

Each photo is checked exactly as ``POST /v1/check`` does (its own audit row); the listing verdict
is ``scoring.listing.score_listing``; the listing row (seller, marketplace, photos' check ids) is
committed before the answer, so seller risk counts every acknowledged listing.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scoring.listing import ListingScore, PhotoOutcome, score_listing
from scoring.scorers import Thresholds
from service.checks.checker import Checker, Embedded
from service.core.auth import Principal
from service.core.errors import InvalidInput, error_of_status, not_found
from service.core.timestamps import iso_utc
from service.db.models import Check, Listing, Role, SellerIdentifier
from service.exchange.identifiers import IdentifierKeying, KeyedIdentifier
from service.exchange.webhooks import Event, enqueue
from service.marketplace.sellers import SellerRecords, of_platform, risk_with
from service.references.registry import ReferenceRegistry


@dataclass(frozen=True)
class ListingFacts:
    listing_id: str | None = None
    seller_id: str | None = None
    marketplace: str | None = None
    title: str | None = None
    price: float | None = None
    currency: str | None = None
    url: str | None = None
    identifiers: dict[str, str] | None = (
        None  # kind -> raw value, e.g. {"email": ...}: keyed before use, never stored
    )


def _exact_copy(answer: dict[str, Any]) -> bool:
    """A photo's check found a PDQ near-duplicate or a verified keypoint copy (not CLIP alone)."""
    return any({"pdq", "local"} & set(item["signals"]) for item in answer["evidence"])


class ListingChecker:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        checker: Checker,
        registry: ReferenceRegistry,
        sellers: SellerRecords,
        thresholds: Callable[[str | None], Thresholds],
        keying: IdentifierKeying = IdentifierKeying(),
        on_event: Callable[[], None] = lambda: None,
    ):
        self.sessions = sessions
        self.checker = checker
        self.registry = registry
        self.sellers = sellers
        self.thresholds = thresholds  # brand -> its policy's thresholds
        self.keying = keying
        self.on_event = on_event  # wakes the webhook deliverer

    async def check(
        self,
        images: list[tuple[str | None, bytes]],
        facts: ListingFacts,
        brand_hint: str | None,
        k: int,
        api_key_id: str | None,
        request_id: str | None = None,
        keyed_ids: list[KeyedIdentifier] | None = None,
        on_stored: Callable[[Session, dict[str, Any]], None] | None = None,
        embedded: list[Embedded | None] | None = None,
        check_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """``images``: (file name, bytes) per photo. ``keyed_ids``: the seller's identifiers already keyed (a scan
        keys them when its feed arrives); ``on_stored``: more writes for the listing's own transaction."""
        if keyed_ids is None:
            keyed_ids = self.key_identifiers(
                facts
            )  # before any photo is checked: a bad identifier writes nothing
        results, photos = await self._checked_photos(
            images, brand_hint, k, api_key_id, request_id, embedded, check_ids
        )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.checker.pool,
            self._score_and_store,
            results,
            photos,
            facts,
            brand_hint,
            api_key_id,
            keyed_ids,
            on_stored,
        )

    async def assess(
        self,
        images: list[tuple[str | None, bytes]],
        facts: ListingFacts,
        brand_hint: str | None,
        k: int,
        api_key_id: str | None,
        platform: str | None,
    ) -> tuple[ListingScore, dict[str, Any] | None, list[dict[str, Any]]]:
        """The listing's photos checked (each its own check row) and scored like ``check``, with ``platform``'s
        record of the seller, but no listing row: a complaint's triage must not raise a seller's risk before
        anyone decided it. Returns the score, the seller record and the photos' answers."""
        results, photos = await self._checked_photos(images, brand_hint, k, api_key_id, None, None, None)
        loop = asyncio.get_running_loop()

        def score() -> tuple[ListingScore, dict[str, Any] | None]:
            seller = self.sellers.risk(facts.marketplace, facts.seller_id, (), platform)
            return self._score(results, facts, brand_hint, seller), seller

        listing_score, seller = await loop.run_in_executor(self.checker.pool, score)
        return listing_score, seller, photos

    async def _checked_photos(
        self, images, brand_hint, k, api_key_id, request_id, embedded, check_ids
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every photo checked (one model pass); the successful results, and every photo's answer."""
        photos = await self.checker.check_many(
            images, brand_hint, k, api_key_id, request_id, embedded, check_ids
        )
        results = [photo["result"] for photo in photos if photo["status"] == 200]
        if not results:  # nothing to judge the listing by: the first photo's own error
            error = photos[0]["error"]
            raise error_of_status(photos[0]["status"], error["code"], error["message"])
        return results, photos

    def get(self, listing_check_id: str, principal: Principal) -> dict[str, Any]:
        """A stored listing check (the id exports, scans and webhooks hand out), within the caller's tenancy:
        a platform its tenant's listings, a brand those judged its brand's, an admin any; else 404."""
        query = select(Listing).where(Listing.id == listing_check_id)
        if principal.role is Role.platform:
            query = query.where(of_platform(principal.platform))
        elif principal.role is Role.brand:
            query = query.where(Listing.brand == principal.brand)
        with self.sessions() as session:
            listing = session.scalars(query).first()
            if listing is None:
                raise not_found("listing check")
            checks = session.scalars(select(Check).where(Check.id.in_(listing.check_ids))).all()
            verdicts = {c.id: (c.verdict, c.probability) for c in checks}
        return {
            "listing_check_id": listing.id,
            "listing_id": listing.listing_id,
            "seller_id": listing.seller_id,
            "marketplace": listing.marketplace,
            "title": listing.title,
            "price": listing.price,
            "currency": listing.currency,
            "url": listing.url,
            "brand": listing.brand,
            "verdict": listing.verdict,
            "counterfeit_probability": listing.probability,
            "created_at": iso_utc(listing.created_at),
            "photos": [
                {"check_id": c, "verdict": verdicts[c][0], "counterfeit_probability": verdicts[c][1]}
                for c in listing.check_ids
                if c in verdicts
            ],
        }

    def key_identifiers(self, facts: ListingFacts) -> list[KeyedIdentifier]:
        """The listing's seller identifiers as keyed hashes; 422 for a listing that cannot be taken as given."""
        if facts.seller_id and not facts.marketplace:
            raise InvalidInput("marketplace_required", "seller_id is per marketplace: give marketplace too.")
        given = {kind: value for kind, value in (facts.identifiers or {}).items() if value is not None}
        if not given:
            return []
        if not (facts.seller_id and facts.marketplace):
            raise InvalidInput(
                "seller_required",
                "Seller identifiers describe a seller: give seller_id and marketplace.",
            )
        if not self.keying.configured:
            raise InvalidInput(
                "no_consortium_key",
                "Seller identifiers are only kept as keyed hashes, and no "
                "COUNTERFEIT_CONSORTIUM_KEYS is configured: leave them out.",
            )
        return [k for kind, value in sorted(given.items()) for k in self.keying.key(kind, value)]

    def _score_and_store(
        self,
        results: list[dict],
        photos: list[dict],
        facts: ListingFacts,
        brand_hint: str | None,
        api_key_id: str | None,
        keyed_ids: list[KeyedIdentifier],
        on_stored: Callable[[Session, dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        seller = self.sellers.risk(
            facts.marketplace, facts.seller_id, keyed_ids, self.sellers.platform_of(api_key_id)
        )
        score = self._score(results, facts, brand_hint, seller)
        listing = self._listing_row(facts, score, results, api_key_id)
        with self.sessions() as session:
            add_listing(
                session,
                listing,
                keyed_ids,
                raises_risk=score.verdict == "likely_counterfeit",
                risk_before=seller["risk"] if seller else 0.0,
            )
            answer = {
                "listing_check_id": listing.id,
                "listing_id": facts.listing_id,
                "verdict": score.verdict,
                "counterfeit_probability": score.probability,
                "brand": score.brand,
                "factors": score.factors,
                "seller": seller,
                "photos": photos,
            }
            if on_stored is not None:
                on_stored(session, answer)
            session.commit()
        self.on_event()
        return answer

    def _score(
        self, results: list[dict], facts: ListingFacts, brand_hint: str | None, seller: dict[str, Any] | None
    ) -> ListingScore:
        photo_outcomes = [
            PhotoOutcome(r["counterfeit_probability"], r["regime"], r["brand"], _exact_copy(r))
            for r in results
        ]
        brand = brand_hint or next((p.brand for p in photo_outcomes if p.has_evidence and p.brand), None)
        return score_listing(
            photo_outcomes,
            self.thresholds(brand),
            seller["risk"] if seller else None,
            facts.price,
            self._reference_price(results, facts.currency),
            sorted({r["shared_by"] for r in seller["shared"]}) if seller else (),
        )

    @staticmethod
    def _listing_row(facts: ListingFacts, score, results: list[dict], api_key_id: str | None) -> Listing:
        return Listing(
            id="lst_" + uuid.uuid4().hex,
            listing_id=facts.listing_id,
            seller_id=facts.seller_id,
            marketplace=facts.marketplace,
            brand=score.brand,
            verdict=score.verdict,
            probability=score.probability,
            check_ids=[r["check_id"] for r in results],
            title=facts.title,
            price=facts.price,
            currency=facts.currency,
            url=facts.url,
            api_key_id=api_key_id,
        )

    def _reference_price(self, results: list[dict], currency: str | None) -> float | None:
        """``reference_price`` of the product the strongest evidence points to, in the listing's currency."""
        top = [
            e["reference_id"]
            for r in sorted(results, key=lambda r: -r["counterfeit_probability"])
            for e in r["evidence"][:1]
            if e["reference_id"] is not None
        ]
        if not top:
            return None
        reference = self.registry.by_ids(top[:1]).get(top[0])
        metadata = reference.extra if reference is not None else {}
        price = metadata.get("reference_price")
        if (
            not isinstance(price, (int, float))
            or isinstance(price, bool)
            or metadata.get("currency") != currency
        ):
            return None
        return float(price)


def add_listing(
    session: Session,
    listing: Listing,
    keyed_ids: list[KeyedIdentifier],
    *,
    raises_risk: bool,
    risk_before: float,
    severity: int = 1,
) -> None:
    """The listing, its seller's keyed identifiers and, when it raises the seller's risk (by ``severity``: 1 a
    likely counterfeit, 2 a confirmed one), that event with the risk before and after."""
    session.add(listing)
    if listing.seller_id:
        session.add_all(
            SellerIdentifier(
                listing_ref=listing.id,
                marketplace=listing.marketplace,
                seller_id=listing.seller_id,
                kind=k.kind,
                key_id=k.key_id,
                digest=k.digest,
            )
            for k in keyed_ids
        )
    if listing.seller_id and raises_risk:
        payload = {
            "marketplace": listing.marketplace,
            "seller_id": listing.seller_id,
            "listing_check_id": listing.id,
            "listing_id": listing.listing_id,
            "risk_before": risk_before,
            "risk_after": risk_with(risk_before, severity),
        }
        event = Event(
            "seller.risk_raised", listing.brand, payload, listing.api_key_id, platform=listing.platform
        )
        enqueue(session, [event])
