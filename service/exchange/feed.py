"""This platform's exchange feed: signed entries, append-only, read by peers from a cursor.

What a peer gets (never an image, a raw seller identifier or a buyer's data):

* ``pdq`` entries: the PDQ hash and sha256 of a brand's known-fake reference whose owner allowed
  sharing (``share_signals``); withdrawn when the reference is deleted or no longer shared.
* ``seller`` entries: a keyed seller identifier (HMAC-SHA256 under a consortium key id,
  service/exchange/identifiers.py) of a seller with counterfeit listings of a brand here, ``confirmed`` (a
  review confirmed one of its photos) or ``likely`` (checked ``likely_counterfeit``), with a reason
  and an expiry ``exchange_seller_ttl_days`` after its last such listing; withdrawn when reviews
  clear its listings or it expires.

The feed is *derived*: ``refresh`` compares what should be shared now (references, listings,
reviews) with the latest entry per key and appends the difference (adds, changed adds, tombstones).
So no code path — registration, deletion, review, expiry — can forget to publish or withdraw. It
runs in one transaction before a page is served; on PostgreSQL an advisory lock keeps two replicas
from appending the same difference twice (harmless anyway: peers apply entries idempotently).

Signatures (Ed25519, the key that signs bundles): each entry alone (its seq and issuer included), so
a peer skips one corrupt entry and goes on — one bad record does not stall the feed; and the page
envelope (issuer, since, next cursor, the entries' seqs, when it was served), so the peer can trust
the cursor and notices a dropped entry or a replayed page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from index.pdq import MIN_QUALITY
from service.core.errors import Conflict
from service.core.timestamps import aware, iso_utc, utcnow
from service.db.models import FeedEntry, Label, Listing, Reference, Review, SellerIdentifier
from service.exchange.signals import sign
from service.marketplace.sellers import CONFIRMED

FORMAT = "counterfeit-feed/1"
TEST_PURCHASE_SOURCE = "test_purchase:"  # a reference's source: the photo of an item a test purchase examined
_REFRESH_LOCK = 0x66656564  # "feed": pg_advisory_xact_lock key


def _from_test_purchase(reference: Reference) -> bool:
    return (reference.source or "").startswith(TEST_PURCHASE_SOURCE)


def entry_payload(entry, issuer: str) -> dict[str, Any]:
    """The signed content of one entry, as peers see it."""
    return {
        "seq": entry.seq,
        "issuer": issuer,
        "type": entry.type,
        "key": entry.entry_key,
        "brand": entry.brand,
        "op": entry.op,
        "data": entry.data,
        "published_at": iso_utc(entry.published_at),
    }


def signed_page(rows: list, since: int, has_more: bool, issuer: str, private_key: str) -> dict[str, Any]:
    """Feed rows (``seq``, ``entry_key``, ``type``, ``brand``, ``op``, ``data``, ``published_at``) as a page: each
    entry signed, in a signed envelope naming their seqs."""
    entries = [sign(entry_payload(row, issuer), private_key) for row in rows]
    envelope = {
        "format": FORMAT,
        "issuer": issuer,
        "since": since,
        "next_cursor": rows[-1].seq if rows else since,
        "has_more": has_more,
        "served_at": iso_utc(utcnow()),
        "seqs": [row.seq for row in rows],
    }
    return {**sign(envelope, private_key), "entries": entries}


class FeedPublisher:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        issuer: str,
        private_key: str | None,
        seller_ttl_days: float,
        page_size: int,
    ):
        self.sessions = sessions
        self.issuer = issuer
        self.private_key = private_key
        self.seller_ttl = timedelta(days=seller_ttl_days)
        self.page_size = page_size

    def page(self, since: int, limit: int | None = None) -> dict[str, Any]:
        """Entries after ``since`` (oldest first), each signed, in a signed envelope."""
        if not self.private_key:
            raise Conflict(
                "signing_not_configured",
                "Set COUNTERFEIT_SIGNAL_PRIVATE_KEY (`counterfeit signals-keygen`) to publish a feed.",
            )
        self.refresh()
        limit = min(limit or self.page_size, self.page_size)
        with self.sessions() as session:
            rows = list(
                session.scalars(
                    select(FeedEntry).where(FeedEntry.seq > since).order_by(FeedEntry.seq).limit(limit + 1)
                )
            )
        has_more = len(rows) > limit
        return signed_page(rows[:limit], since, has_more, self.issuer, self.private_key)

    def refresh(self) -> int:
        """Append the difference between what is shared now and the feed's latest state; the number appended."""
        now = utcnow()
        with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
            wanted = {**self._pdq_entries(session), **self._seller_entries(session, now)}
            latest = self._latest(session)
            appended = []
            for key, (kind, brand, data) in sorted(wanted.items()):
                current = latest.get(key)
                if current is None or current.op != "add" or current.data != data:
                    appended.append(
                        FeedEntry(
                            entry_key=key, type=kind, brand=brand, op="add", data=data, published_at=now
                        )
                    )
            for key, current in sorted(latest.items()):
                if current.op == "add" and key not in wanted:
                    appended.append(
                        FeedEntry(
                            entry_key=key,
                            type=current.type,
                            brand=current.brand,
                            op="withdraw",
                            data=None,
                            published_at=now,
                        )
                    )
            session.add_all(appended)
            session.commit()
            return len(appended)

    @staticmethod
    def _latest(session: Session) -> dict[str, FeedEntry]:
        newest = select(func.max(FeedEntry.seq)).group_by(FeedEntry.entry_key).scalar_subquery()
        return {
            row.entry_key: row for row in session.scalars(select(FeedEntry).where(FeedEntry.seq.in_(newest)))
        }

    @staticmethod
    def _pdq_entries(session: Session) -> dict[str, tuple[str, str, dict]]:
        references = session.scalars(
            select(Reference).where(
                Reference.label == Label.counterfeit,
                Reference.share_signals.is_(True),
                Reference.deleted_at.is_(None),
                Reference.pdq_quality >= MIN_QUALITY,
            )
        )
        return {
            f"pdq:{r.brand}:{r.sha256}": (
                "pdq",
                r.brand,
                {
                    "sha256": r.sha256,
                    "pdq": r.pdq_hash,
                    "quality": r.pdq_quality,
                    "product": r.product,
                    # an examined item, not a photo someone judged: peers may weigh it higher
                    **(
                        {"status": "confirmed", "provenance": "test_purchase"}
                        if _from_test_purchase(r)
                        else {}
                    ),
                },
            )
            for r in references
        }

    def _seller_entries(self, session: Session, now: datetime) -> dict[str, tuple[str, str, dict]]:
        """One entry per brand × keyed identifier of a seller with likely or confirmed counterfeit listings."""
        listings = {
            row.id: row
            for row in session.scalars(
                select(Listing).where(
                    Listing.brand.is_not(None), Listing.id.in_(select(SellerIdentifier.listing_ref))
                )
            )
        }
        if not listings:
            return {}
        check_ids = [c for listing in listings.values() for c in listing.check_ids]
        reviewed: dict[str, set[Label]] = {}
        for check_id, label in session.execute(
            select(Review.check_id, Review.label).where(Review.check_id.in_(check_ids))
        ):
            reviewed.setdefault(check_id, set()).add(label)
        grouped: dict[str, dict[str, Any]] = {}
        for identifier in session.scalars(
            select(SellerIdentifier).where(SellerIdentifier.listing_ref.in_(listings))
        ):
            listing = listings[identifier.listing_ref]
            labels = set().union(*(reviewed.get(c, set()) for c in listing.check_ids))
            if Label.counterfeit in labels or listing.verdict == CONFIRMED:
                status = "confirmed"
            elif Label.authentic in labels or listing.verdict != "likely_counterfeit":
                continue  # a review cleared it, or it was never judged a fake
            else:
                status = "likely"
            key = f"seller:{listing.brand}:{identifier.key_id}:{identifier.digest}"
            group = grouped.setdefault(
                key,
                {
                    "brand": listing.brand,
                    "kind": identifier.kind,
                    "key_id": identifier.key_id,
                    "digest": identifier.digest,
                    "confirmed": set(),
                    "likely": set(),
                    "last": None,
                },
            )
            group[status].add(listing.id)
            created = aware(listing.created_at)
            group["last"] = created if group["last"] is None else max(group["last"], created)
        return self._entries_of(grouped, now)

    def _entries_of(
        self, grouped: dict[str, dict[str, Any]], now: datetime
    ) -> dict[str, tuple[str, str, dict]]:
        """Each grouped identifier as a feed entry, unless its last listing is older than the seller TTL."""
        entries = {}
        for key, group in grouped.items():
            expires = group["last"] + self.seller_ttl
            if expires <= now:
                continue
            confirmed, likely = len(group["confirmed"]), len(group["likely"] - group["confirmed"])
            entries[key] = (
                "seller",
                group["brand"],
                {
                    "kind": group["kind"],
                    "key_id": group["key_id"],
                    "digest": group["digest"],
                    "status": "confirmed" if confirmed else "likely",
                    "reason": f"{confirmed} confirmed and {likely} likely counterfeit listing(s) of {group['brand']}",
                    "expires_at": iso_utc(expires),
                },
            )
        return entries
