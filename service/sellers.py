"""Seller records from checked listings: counts, recency-weighted risk, brands affected.

Risk is ``1 − exp(−Σ w_i · s_i / 3)`` over the seller's listings, with ``s_i`` = 2 for a listing
whose photo a review confirmed counterfeit, 1 for a listing checked ``likely_counterfeit``, 0
otherwise, and ``w_i = 0.5 ^ (age in days / RISK_HALF_LIFE_DAYS)``: three recent likely fakes (or
one recent confirmed and one likely) put a seller above 0.6; a seller quiet for months fades.
Computed from the listings table when asked, so it is never stale. A brand key sees a seller
through its own brand's listings only.

Sellers that share a keyed identifier (service/identifiers.py: the same e-mail, phone, payout
account or shop URL under another shop name) are **linked**: a seller's risk counts its linked
sellers' listings too, and the record names them and the kinds of identifier that link them.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Label, Listing, Review, SellerIdentifier
from service.identifiers import KeyedIdentifier
from service.timestamps import aware, iso_utc, utcnow

RISK_HALF_LIFE_DAYS = 30.0


def _weight(created_at: datetime, now: datetime) -> float:
    age_days = max((now - aware(created_at)).total_seconds(), 0.0) / 86400
    return 0.5 ** (age_days / RISK_HALF_LIFE_DAYS)


def _confirmed_checks(session: Session, listings: Iterable[Listing]) -> set[str]:
    check_ids = [c for listing in listings for c in listing.check_ids]
    if not check_ids:
        return set()
    return set(session.scalars(select(Review.check_id).where(Review.check_id.in_(check_ids),
                                                             Review.label == Label.counterfeit)))


def linked_sellers(session: Session, marketplace: str, seller_id: str,
                   also: Iterable[KeyedIdentifier] = ()) -> dict[tuple[str, str], set[str]]:
    """Other sellers sharing a keyed identifier with this one (its stored ones and ``also``): who → via which kinds."""
    mine = {(k.key_id, k.digest) for k in also}
    mine |= set(session.execute(select(SellerIdentifier.key_id, SellerIdentifier.digest).where(
        SellerIdentifier.marketplace == marketplace, SellerIdentifier.seller_id == seller_id)).all())
    if not mine:
        return {}
    linked: dict[tuple[str, str], set[str]] = {}
    rows = session.execute(select(SellerIdentifier.marketplace, SellerIdentifier.seller_id, SellerIdentifier.kind,
                                  SellerIdentifier.key_id, SellerIdentifier.digest)
                           .where(SellerIdentifier.digest.in_({digest for _, digest in mine}))).all()
    for other_marketplace, other_seller, kind, key_id, digest in rows:
        if (key_id, digest) in mine and (other_marketplace, other_seller) != (marketplace, seller_id):
            linked.setdefault((other_marketplace, other_seller), set()).add(kind)
    return linked


def summarise(marketplace: str, seller_id: str, listings: list[Listing], confirmed_checks: set[str],
              now: datetime | None = None, linked: dict[tuple[str, str], set[str]] | None = None) -> dict[str, Any]:
    now = now or utcnow()
    total, likely, confirmed, brands = 0.0, 0, 0, set()
    for listing in listings:
        is_confirmed = any(c in confirmed_checks for c in listing.check_ids)
        is_likely = listing.verdict == "likely_counterfeit"
        severity = 2 if is_confirmed else 1 if is_likely else 0
        confirmed += is_confirmed
        likely += is_likely
        if severity and listing.brand:
            brands.add(listing.brand)
        total += _weight(listing.created_at, now) * severity
    return {
        "marketplace": marketplace, "seller_id": seller_id, "risk": round(1 - math.exp(-total / 3), 4),
        "listings": len(listings), "likely_counterfeit": likely, "confirmed_counterfeit": confirmed,
        "brands": sorted(brands),
        "first_seen": iso_utc(min(aware(x.created_at) for x in listings)) if listings else None,
        "last_seen": iso_utc(max(aware(x.created_at) for x in listings)) if listings else None,
        "linked_sellers": [{"marketplace": m, "seller_id": s, "via": sorted(kinds)}
                           for (m, s), kinds in sorted((linked or {}).items())],
    }


class SellerRecords:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def get(self, marketplace: str, seller_id: str, brand_scope: str | None = None,
            also: Iterable[KeyedIdentifier] = ()) -> dict[str, Any] | None:
        """The seller's record over its own and its linked sellers' listings (those this brand may see);
        None when there are none. ``also``: identifiers of a listing being checked, not yet stored."""
        with self.sessions() as session:
            linked = linked_sellers(session, marketplace, seller_id, also)
            sellers = [(marketplace, seller_id), *linked]
            query = select(Listing).where(or_(*(and_(Listing.marketplace == m, Listing.seller_id == s) for m, s in sellers)))
            listings = list(session.scalars(query.where(Listing.brand == brand_scope) if brand_scope else query))
            if not listings:
                return None
            return summarise(marketplace, seller_id, listings, _confirmed_checks(session, listings), linked=linked)

    def risk(self, marketplace: str | None, seller_id: str | None,
             also: Iterable[KeyedIdentifier] = ()) -> dict[str, Any] | None:
        """The seller's record before a new listing is scored (all brands: a platform-side feature)."""
        if not marketplace or not seller_id:
            return None
        return self.get(marketplace, seller_id, also=also)

    def ranked(self, brand: str | None, min_risk: float, limit: int) -> list[dict[str, Any]]:
        """Sellers by risk, highest first; with ``brand``, through that brand's listings only."""
        with self.sessions() as session:
            query = select(Listing).where(Listing.seller_id.is_not(None), Listing.marketplace.is_not(None))
            listings = list(session.scalars(query.where(Listing.brand == brand) if brand else query))
            confirmed = _confirmed_checks(session, listings)
        by_seller: dict[tuple[str, str], list[Listing]] = {}
        for listing in listings:
            by_seller.setdefault((listing.marketplace, listing.seller_id), []).append(listing)
        now = utcnow()
        records = [summarise(m, s, rows, confirmed, now) for (m, s), rows in by_seller.items()]
        records = [r for r in records if r["risk"] >= min_risk]
        return sorted(records, key=lambda r: (-r["risk"], r["marketplace"], r["seller_id"]))[:limit]
