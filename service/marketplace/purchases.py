"""Test purchases: an order placed to test a listing, and what an examiner found in the item received.

Recorded by the brand (for a platform tenant) or by the platform (for a brand): the listing and seller,
the order reference, when it was ordered and received, the outcome and the examiner's note, photos of the
item received. Outcomes:

* ``counterfeit_confirmed``: the photos become references in the brand's **counterfeit bank** with
  source ``test_purchase:<id>`` (shared on the exchange feed when ``share_signals`` is set, marked
  ``"status": "confirmed", "provenance": "test_purchase"``), and the listing is recorded for the platform
  with the verdict ``confirmed_counterfeit``: the seller's risk counts it as a **confirmed fact** (a
  review's weight), linked sellers and peers' feeds (keyed identifiers) included;
* ``genuine``: recorded (the photos kept as evidence), nothing raised;
* ``not_delivered``: recorded, without photos or a receipt date.

The same order (platform, brand, order reference) recorded twice is one test purchase: a retry with the
same outcome answers the first record, a different outcome is a conflict. Nothing is written for a
request refused on its input: identifiers are keyed and every photo is decoded (and checked against the
bank's labels) before the first reference is registered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.core.audit import audit_event
from service.core.auth import Principal
from service.core.blobs import BlobStore
from service.core.errors import Conflict, InvalidInput, not_found
from service.core.timestamps import iso_utc, utcnow
from service.db.models import EvidencePhoto, Label, Listing, Role, TestPurchase
from service.exchange.feed import TEST_PURCHASE_SOURCE
from service.exchange.webhooks import Event, enqueue
from service.marketplace.listings import ListingChecker, ListingFacts, add_listing
from service.marketplace.sellers import CONFIRMED, platform_exists
from service.references.registry import NewReference, ReferenceRegistry

OUTCOMES = ("counterfeit_confirmed", "genuine", "not_delivered")


@dataclass(frozen=True)
class NewTestPurchase:
    platform: str
    brand: str
    listing: ListingFacts
    order_reference: str
    ordered_on: date
    received_on: date | None
    outcome: str
    examiner_note: str
    photos: list[tuple[str | None, bytes]] = field(default_factory=list)
    share_signals: bool = False


def purchase_to_dict(purchase: TestPurchase, photos: list[EvidencePhoto]) -> dict[str, Any]:
    return {
        "id": purchase.id,
        "platform": purchase.platform,
        "brand": purchase.brand,
        "listing": {**purchase.listing, "listing_check_id": purchase.listing_ref},
        "order_reference": purchase.order_reference,
        "ordered_on": purchase.ordered_on,
        "received_on": purchase.received_on,
        "outcome": purchase.outcome,
        "examiner_note": purchase.examiner_note,
        "reference_ids": purchase.reference_ids,
        "photos": [{"sha256": p.sha256, "check_id": p.check_id} for p in photos],
        "created_at": iso_utc(purchase.created_at),
    }


def _refuse_inconsistent(new: NewTestPurchase) -> None:
    if new.outcome not in OUTCOMES:
        raise InvalidInput("invalid_outcome", f"outcome must be one of: {', '.join(OUTCOMES)}.")
    if not (new.listing.listing_id or new.listing.url):
        raise InvalidInput(
            "listing_required", "Name the listing: its listing_id on the platform, or its url."
        )
    today = utcnow().date()
    if new.ordered_on > today or (new.received_on and new.received_on > today):
        raise InvalidInput("invalid_dates", "ordered_on and received_on cannot be in the future.")
    if new.received_on and new.received_on < new.ordered_on:
        raise InvalidInput("invalid_dates", "received_on cannot be before ordered_on.")
    if new.outcome == "not_delivered" and (new.received_on or new.photos):
        raise InvalidInput("not_delivered", "A purchase not delivered has no received_on and no photos.")
    if new.outcome == "counterfeit_confirmed" and not (new.photos and new.received_on):
        raise InvalidInput(
            "evidence_required", "A confirmed counterfeit needs received_on and photos of the item received."
        )


class TestPurchases:
    __test__ = False  # not a pytest class, whatever its name

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        registry: ReferenceRegistry,
        listings: ListingChecker,
        on_event: Callable[[], None] = lambda: None,
    ):
        self.sessions = sessions
        self.blobs = blobs
        self.registry = registry
        self.listings = listings  # keys seller identifiers the way listing checks do
        self.on_event = on_event

    def record(self, new: NewTestPurchase, principal: Principal) -> tuple[dict[str, Any], bool]:
        """The test purchase and whether it is new (False: the same order recorded before, same outcome)."""
        _refuse_inconsistent(new)
        existing = self._same_order(new)
        if existing is not None:
            return existing, False
        with self.sessions() as session:
            known = platform_exists(session, new.platform)
        if not known:
            raise InvalidInput("unknown_platform", f"No platform tenant '{new.platform}' here.")
        keyed = self.listings.key_identifiers(new.listing)  # a bad identifier: 422 before anything is written
        purchase_id = "tp_" + uuid.uuid4().hex
        references = self._bank(purchase_id, new, principal) if new.outcome == "counterfeit_confirmed" else []
        digests = [self.blobs.put(data) for _, data in new.photos]  # kept by the references too, when banked
        try:
            answer = self._store(purchase_id, new, keyed, references, digests, principal)
        except IntegrityError:  # the same order recorded concurrently: the first one stands
            existing = self._same_order(new)
            if existing is None:
                raise
            return existing, False
        self.on_event()
        return answer, True

    def _same_order(self, new: NewTestPurchase) -> dict[str, Any] | None:
        with self.sessions() as session:
            purchase = session.scalars(
                select(TestPurchase).where(
                    TestPurchase.platform == new.platform,
                    TestPurchase.brand == new.brand,
                    TestPurchase.order_reference == new.order_reference,
                )
            ).first()
            if purchase is None:
                return None
            if purchase.outcome != new.outcome:
                raise Conflict(
                    "duplicate_order",
                    f"Order {new.order_reference} is already recorded ({purchase.id}) as {purchase.outcome}.",
                )
            return purchase_to_dict(purchase, self._photos(session, purchase.id))

    def _bank(self, purchase_id: str, new: NewTestPurchase, principal: Principal) -> list[int]:
        """The received item's photos as counterfeit references: all checked first, then registered (a retry
        after a failure finds the ones already registered: registration is idempotent)."""
        photos = [data for _, data in new.photos]
        self.registry.preflight(new.brand, Label.counterfeit, photos)
        source = TEST_PURCHASE_SOURCE + purchase_id
        reference = NewReference(
            brand=new.brand, label=Label.counterfeit, source=source, share_signals=new.share_signals
        )
        return sorted({self.registry.register(reference, data, principal)[0].id for data in photos})

    def _store(
        self, purchase_id, new: NewTestPurchase, keyed, references, digests, principal
    ) -> dict[str, Any]:
        facts = new.listing
        listing = None
        if new.outcome == "counterfeit_confirmed":
            listing = Listing(
                id="lst_" + uuid.uuid4().hex,
                listing_id=facts.listing_id,
                seller_id=facts.seller_id,
                marketplace=facts.marketplace,
                brand=new.brand,
                verdict=CONFIRMED,
                probability=1.0,
                check_ids=[],
                title=facts.title,
                url=facts.url,
                api_key_id=principal.key_id,
                platform=new.platform,
            )
        purchase = TestPurchase(
            id=purchase_id,
            platform=new.platform,
            brand=new.brand,
            listing={
                k: getattr(facts, k) for k in ("listing_id", "url", "marketplace", "seller_id", "title")
            },
            order_reference=new.order_reference,
            ordered_on=new.ordered_on.isoformat(),
            received_on=new.received_on.isoformat() if new.received_on else None,
            outcome=new.outcome,
            examiner_note=new.examiner_note,
            listing_ref=listing.id if listing else None,
            reference_ids=references,
            api_key_id=principal.key_id,
            created_at=utcnow(),
        )
        with self.sessions() as session:
            session.add(purchase)
            photos = [EvidencePhoto(owner_id=purchase_id, sha256=d) for d in digests]
            session.add_all(photos)
            if listing is not None:
                record = self.listings.sellers.risk(facts.marketplace, facts.seller_id, keyed, new.platform)
                before = record["risk"] if record else 0.0
                add_listing(session, listing, keyed, raises_risk=True, risk_before=before, severity=2)
            session.add(
                audit_event(principal, "test_purchase.record", new.brand, purchase_id, outcome=new.outcome)
            )
            payload = {"test_purchase_id": purchase_id, "outcome": new.outcome, "listing": purchase.listing}
            enqueue(
                session, [Event("test_purchase.recorded", new.brand, payload, principal.key_id, new.platform)]
            )
            session.commit()
            return purchase_to_dict(purchase, photos)

    @staticmethod
    def _photos(session: Session, owner_id: str) -> list[EvidencePhoto]:
        return list(
            session.scalars(
                select(EvidencePhoto).where(EvidencePhoto.owner_id == owner_id).order_by(EvidencePhoto.id)
            )
        )

    def get(self, purchase_id: str, principal: Principal) -> dict[str, Any]:
        with self.sessions() as session:
            purchase = session.get(TestPurchase, purchase_id)
            if purchase is None or not _sees(principal, purchase):
                raise not_found("test purchase")
            return purchase_to_dict(purchase, self._photos(session, purchase.id))

    def list(self, principal: Principal, outcome: str | None, limit: int) -> list[dict[str, Any]]:
        query = select(TestPurchase)
        if principal.role is Role.brand:
            query = query.where(TestPurchase.brand == principal.brand)
        elif principal.role is Role.platform:
            query = query.where(TestPurchase.platform == principal.platform)
        if outcome:
            query = query.where(TestPurchase.outcome == outcome)
        query = query.order_by(TestPurchase.created_at.desc(), TestPurchase.id).limit(limit)
        with self.sessions() as session:
            return [purchase_to_dict(p, self._photos(session, p.id)) for p in session.scalars(query)]


def _sees(principal: Principal, purchase: TestPurchase) -> bool:
    if principal.role is Role.brand:
        return purchase.brand == principal.brand
    if principal.role is Role.platform:
        return purchase.platform == principal.platform
    return True
