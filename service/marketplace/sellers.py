"""Seller records from checked listings: counts, recency-weighted risk, brands affected.

Risk is ``1 − exp(−Σ w_i · s_i / 3)`` over the seller's listings, with ``s_i`` = 2 for a listing
whose photo a review (or an upheld complaint) confirmed counterfeit or whose item a test purchase did, 1 for a listing checked ``likely_counterfeit``, 0
otherwise, and ``w_i = 0.5 ^ (age in days / RISK_HALF_LIFE_DAYS)``: three recent likely fakes (or
one recent confirmed and one likely) put a seller above 0.6; a seller quiet for months fades.
Computed from the listings table when asked, so it is never stale. A brand key sees a seller
through its own brand's listings only (on every platform); a platform key through its own platform's
listings only: what other platforms know reaches it through the signed exchange feed alone.

Sellers that share a keyed identifier (service/exchange/identifiers.py: the same e-mail, phone, payout
account or shop URL under another shop name) are **linked**: a seller's risk counts its linked
sellers' listings too, and the record names them and the kinds of identifier that link them.

**Shared by other platforms** (service/exchange/feed_pull.py): a keyed identifier a trusted peer's feed
reported for a seller with counterfeit listings there raises the risk here by ``weight × s`` (the
peer's configured weight; s = 2 confirmed, 1 likely) until the entry expires or is withdrawn, and
the record shows it as ``shared: [{"shared_by": <issuer>, …}]``. Only digests match: neither side
ever sees the other's raw identifiers.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterable, Mapping

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.timestamps import aware, iso_utc, utcnow
from service.db.models import (
    ApiKey,
    Label,
    Listing,
    PlatformPolicy,
    Review,
    SellerIdentifier,
    SharedSellerSignal,
)
from service.exchange.identifiers import KeyedIdentifier

RISK_HALF_LIFE_DAYS = 30.0
# The verdict of a listing known counterfeit without a model's word: a test purchase's examined item.
CONFIRMED = "confirmed_counterfeit"


def risk_with(risk_before: float, severity: int) -> float:
    """The risk once a listing of ``severity`` (1 likely, 2 confirmed) is added now: the formula above, inverted
    for the total and added to."""
    return round(1 - (1 - risk_before) * math.exp(-severity / 3), 4)


def _weight(created_at: datetime, now: datetime) -> float:
    age_days = max((now - aware(created_at)).total_seconds(), 0.0) / 86400
    return 0.5 ** (age_days / RISK_HALF_LIFE_DAYS)


def _confirmed_checks(session: Session, listings: Iterable[Listing]) -> set[str]:
    check_ids = [c for listing in listings for c in listing.check_ids]
    if not check_ids:
        return set()
    return set(
        session.scalars(
            select(Review.check_id).where(Review.check_id.in_(check_ids), Review.label == Label.counterfeit)
        )
    )


def of_platform(platform: str | None):
    """The SQL condition for listings a platform tenant made (None: every platform's)."""
    if platform is None:
        return Listing.id.is_not(None)
    return or_(
        Listing.platform == platform,
        Listing.api_key_id.in_(select(ApiKey.id).where(ApiKey.platform == platform)),
    )


def platform_exists(session: Session, platform: str) -> bool:
    """A platform tenant is known by its keys (or a policy an admin set for it before its first key)."""
    return (
        session.scalar(select(ApiKey.id).where(ApiKey.platform == platform).limit(1)) is not None
        or session.get(PlatformPolicy, platform) is not None
    )


def _identifiers_of_platform(platform: str | None):
    return (
        SellerIdentifier.listing_ref.in_(select(Listing.id).where(of_platform(platform)))
        if platform
        else SellerIdentifier.listing_ref.is_not(None)
    )


def own_identifiers(
    session: Session,
    marketplace: str,
    seller_id: str,
    also: Iterable[KeyedIdentifier] = (),
    platform: str | None = None,
) -> dict[tuple[str, str], str]:
    """The seller's keyed identifiers (stored from ``platform``'s listings, and ``also``): (key id, digest) → kind."""
    mine = {(k.key_id, k.digest): k.kind for k in also}
    mine.update(
        {
            (key_id, digest): kind
            for key_id, digest, kind in session.execute(
                select(SellerIdentifier.key_id, SellerIdentifier.digest, SellerIdentifier.kind).where(
                    SellerIdentifier.marketplace == marketplace,
                    SellerIdentifier.seller_id == seller_id,
                    _identifiers_of_platform(platform),
                )
            )
        }
    )
    return mine


def linked_sellers(
    session: Session,
    marketplace: str,
    seller_id: str,
    mine: Mapping[tuple[str, str], str],
    platform: str | None = None,
) -> dict[tuple[str, str], set[str]]:
    """Other sellers (of ``platform``'s listings) sharing one of ``mine`` (keyed identifiers) with this one: who →
    via which kinds."""
    if not mine:
        return {}
    linked: dict[tuple[str, str], set[str]] = {}
    rows = session.execute(
        select(
            SellerIdentifier.marketplace,
            SellerIdentifier.seller_id,
            SellerIdentifier.kind,
            SellerIdentifier.key_id,
            SellerIdentifier.digest,
        ).where(
            SellerIdentifier.digest.in_({digest for _, digest in mine}), _identifiers_of_platform(platform)
        )
    ).all()
    for other_marketplace, other_seller, kind, key_id, digest in rows:
        if (key_id, digest) in mine and (other_marketplace, other_seller) != (marketplace, seller_id):
            linked.setdefault((other_marketplace, other_seller), set()).add(kind)
    return linked


def shared_rows(
    session: Session, digests: Iterable[str], weights: Mapping[str, float], brand_scope: str | None
) -> list[SharedSellerSignal]:
    """Trusted peers' seller entries for these digests (one query, however many sellers ask)."""
    digests = set(digests)
    if not digests or not weights:
        return []
    query = select(SharedSellerSignal).where(
        SharedSellerSignal.digest.in_(digests), SharedSellerSignal.issuer.in_(list(weights))
    )
    if brand_scope:
        query = query.where(SharedSellerSignal.brand == brand_scope)
    return list(session.scalars(query.order_by(SharedSellerSignal.seq)))


def shared_reports(
    rows: Iterable[SharedSellerSignal],
    mine: Mapping[tuple[str, str], str],
    weights: Mapping[str, float],
    now: datetime,
) -> list[dict[str, Any]]:
    """What trusted peers' feeds say of these identifiers: one report per issuer × brand."""
    reports: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if (row.key_id, row.digest) not in mine or (
            row.expires_at is not None and aware(row.expires_at) <= now
        ):
            continue
        report = reports.setdefault(
            (row.issuer, row.brand),
            {
                "shared_by": row.issuer,
                "brand": row.brand,
                "status": "likely",
                "via": set(),
                "reason": row.reason,
                "weight": weights[row.issuer],
                "expires_at": None,
            },
        )
        report["via"].add(mine[(row.key_id, row.digest)])
        if row.status == "confirmed":
            report["status"], report["reason"] = "confirmed", row.reason
        if row.expires_at is not None:
            report["expires_at"] = max(filter(None, [report["expires_at"], iso_utc(row.expires_at)]))
    return [{**r, "via": sorted(r["via"])} for _, r in sorted(reports.items())]


def summarise(
    marketplace: str,
    seller_id: str,
    listings: list[Listing],
    confirmed_checks: set[str],
    now: datetime | None = None,
    linked: dict[tuple[str, str], set[str]] | None = None,
    shared: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    now = now or utcnow()
    total, likely, confirmed, brands = 0.0, 0, 0, set()
    for report in shared:  # other platforms' word: not decayed here, it expires at its issuer's expiry
        total += report["weight"] * (2 if report["status"] == "confirmed" else 1)
    for listing in listings:
        is_confirmed = listing.verdict == CONFIRMED or any(c in confirmed_checks for c in listing.check_ids)
        is_likely = listing.verdict == "likely_counterfeit"
        severity = 2 if is_confirmed else 1 if is_likely else 0
        confirmed += is_confirmed
        likely += is_likely
        if severity and listing.brand:
            brands.add(listing.brand)
        total += _weight(listing.created_at, now) * severity
    return {
        "marketplace": marketplace,
        "seller_id": seller_id,
        "risk": round(1 - math.exp(-total / 3), 4),
        "listings": len(listings),
        "likely_counterfeit": likely,
        "confirmed_counterfeit": confirmed,
        "brands": sorted(brands),
        "first_seen": iso_utc(min(aware(x.created_at) for x in listings)) if listings else None,
        "last_seen": iso_utc(max(aware(x.created_at) for x in listings)) if listings else None,
        "linked_sellers": [
            {"marketplace": m, "seller_id": s, "via": sorted(kinds)}
            for (m, s), kinds in sorted((linked or {}).items())
        ],
        "shared": list(shared),
    }


class SellerRecords:
    def __init__(self, sessions: sessionmaker[Session], shared_weights: Mapping[str, float] | None = None):
        self.sessions = sessions
        self.shared_weights = dict(
            shared_weights or {}
        )  # trusted peers whose seller entries count, and how much

    def get(
        self,
        marketplace: str,
        seller_id: str,
        brand_scope: str | None = None,
        also: Iterable[KeyedIdentifier] = (),
        platform: str | None = None,
    ) -> dict[str, Any] | None:
        """The seller's record over its own and its linked sellers' listings (those this brand, or this platform,
        may see) and what trusted peers shared of its identifiers; None when there is nothing. ``also``:
        identifiers of a listing being checked, not yet stored."""
        now = utcnow()
        with self.sessions() as session:
            mine = own_identifiers(session, marketplace, seller_id, also, platform)
            linked = linked_sellers(session, marketplace, seller_id, mine, platform)
            rows = shared_rows(session, (digest for _, digest in mine), self.shared_weights, brand_scope)
            shared = shared_reports(rows, mine, self.shared_weights, now)
            sellers = [(marketplace, seller_id), *linked]
            query = select(Listing).where(
                or_(*(and_(Listing.marketplace == m, Listing.seller_id == s) for m, s in sellers)),
                of_platform(platform),
            )
            listings = list(
                session.scalars(query.where(Listing.brand == brand_scope) if brand_scope else query)
            )
            if not listings and not shared:
                return None
            return summarise(
                marketplace, seller_id, listings, _confirmed_checks(session, listings), now, linked, shared
            )

    def history(
        self,
        marketplace: str,
        seller_id: str,
        brand_scope: str | None = None,
        platform: str | None = None,
        limit: int = 100,
    ) -> list[Listing]:
        """The seller's own listings this brand (or platform) may see, newest first: its history on a seller page."""
        query = (
            select(Listing)
            .where(Listing.marketplace == marketplace, Listing.seller_id == seller_id, of_platform(platform))
            .order_by(Listing.created_at.desc())
            .limit(limit)
        )
        if brand_scope:
            query = query.where(Listing.brand == brand_scope)
        with self.sessions() as session:
            listings = list(session.scalars(query))
            session.expunge_all()
        return listings

    def platform_of(self, api_key_id: str | None) -> str | None:
        """The platform tenant of the key that made a listing (None: an admin's or the operator's, all platforms)."""
        if api_key_id is None:
            return None
        with self.sessions() as session:
            return session.scalar(select(ApiKey.platform).where(ApiKey.id == api_key_id))

    def risk(
        self,
        marketplace: str | None,
        seller_id: str | None,
        also: Iterable[KeyedIdentifier] = (),
        platform: str | None = None,
    ) -> dict[str, Any] | None:
        """The seller's record before a new listing is scored (all brands, the checking platform's listings: a
        platform-side feature)."""
        if not marketplace or not seller_id:
            return None
        return self.get(marketplace, seller_id, also=also, platform=platform)

    def ranked(
        self, brand: str | None, min_risk: float, limit: int, platform: str | None = None
    ) -> list[dict[str, Any]]:
        """Sellers by risk, highest first; with ``brand``, through that brand's listings only; with ``platform``,
        through that platform's."""
        now = utcnow()
        with self.sessions() as session:
            query = select(Listing).where(
                Listing.seller_id.is_not(None), Listing.marketplace.is_not(None), of_platform(platform)
            )
            listings = list(session.scalars(query.where(Listing.brand == brand) if brand else query))
            confirmed = _confirmed_checks(session, listings)
            by_seller: dict[tuple[str, str], list[Listing]] = {}
            for listing in listings:
                by_seller.setdefault((listing.marketplace, listing.seller_id), []).append(listing)
            identifiers: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
            if self.shared_weights and listings:
                owners = {x.id: (x.marketplace, x.seller_id) for x in listings}
                for ref, key_id, digest, kind in session.execute(
                    select(
                        SellerIdentifier.listing_ref,
                        SellerIdentifier.key_id,
                        SellerIdentifier.digest,
                        SellerIdentifier.kind,
                    ).where(SellerIdentifier.listing_ref.in_(list(owners)))
                ):
                    identifiers.setdefault(owners[ref], {})[(key_id, digest)] = kind
            shared = shared_rows(
                session, (d for ids in identifiers.values() for _, d in ids), self.shared_weights, brand
            )
        records = [
            summarise(
                m,
                s,
                rows,
                confirmed,
                now,
                shared=shared_reports(shared, identifiers.get((m, s), {}), self.shared_weights, now),
            )
            for (m, s), rows in by_seller.items()
        ]
        records = [r for r in records if r["risk"] >= min_risk]
        return sorted(records, key=lambda r: (-r["risk"], r["marketplace"], r["seller_id"]))[:limit]
