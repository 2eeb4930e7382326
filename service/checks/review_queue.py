"""The workbench's review queue: a brand's unreviewed flagged checks, filtered, deduplicated and paged.

* **What is queued**: checks about the brand, ``likely_counterfeit`` or ``inconclusive`` *with* evidence
  (a check that found nothing relevant is no question for a reviewer), with no review yet.
* **Order**: likely counterfeits first, highest probability first; then uncertain ones, closest to a coin
  flip first: the items a reviewer's word changes most.
* **One row per photo**: the same photo checked again (two scans of one catalogue, a listing re-checked)
  is one row, the newest check, with how many times it was seen; deciding it decides its repeats too
  (service/checks/reviews.py reviews each).
* **Filters** on the check (verdict, probability, dates) run in SQL over the newest ``WINDOW`` matching
  checks; the ones on where it came from (listing, seller, marketplace, scan, product, free text) on the
  rows those checks make. ``total`` counts every row that passes, ``page`` cuts ``size`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import Principal
from service.core.timestamps import aware
from service.db.models import Check, Listing, Review, ScanItem

WINDOW = 5000
QUEUED = ("likely_counterfeit", "inconclusive")
SOURCES = ("api", "listing", "scan")


@dataclass(frozen=True)
class QueueFilter:
    verdict: str | None = None  # likely_counterfeit or inconclusive; None: both
    min_probability: float | None = None
    max_probability: float | None = None
    since: date | None = None
    until: date | None = None  # inclusive
    source: str | None = None  # api, listing or scan
    marketplace: str | None = None
    seller: str | None = None
    product: str | None = None  # part of the matched reference's product
    search: str | None = None  # part of a check id, listing id, title or seller


@dataclass
class QueueRow:
    check: Check
    seen: int = 1  # how many checks of this photo are waiting
    repeat_ids: list[str] = field(default_factory=list)
    listing: Listing | None = None
    scan_id: str | None = None

    @property
    def source(self) -> str:
        return "scan" if self.scan_id else "listing" if self.listing is not None else "api"

    @property
    def top(self) -> dict[str, Any]:
        return (self.check.evidence or [{}])[0]

    @property
    def product(self) -> str | None:
        return next((e.get("product") for e in self.check.evidence or [] if e.get("product")), None)

    def matches(self, wanted: QueueFilter) -> bool:
        listing = self.listing
        text = " ".join(
            filter(None, [self.check.id, *(self._listing_words() if listing is not None else [])])
        ).lower()
        return (
            (wanted.source is None or self.source == wanted.source)
            and (
                wanted.marketplace is None
                or (listing is not None and listing.marketplace == wanted.marketplace)
            )
            and (wanted.seller is None or (listing is not None and listing.seller_id == wanted.seller))
            and (wanted.product is None or wanted.product.lower() in (self.product or "").lower())
            and (wanted.search is None or wanted.search.lower() in text)
        )

    def _listing_words(self) -> list[str | None]:
        listing = self.listing
        return [listing.listing_id, listing.title, listing.seller_id, listing.marketplace, listing.id]


def _sort_key(row: QueueRow) -> tuple[int, float]:
    check = row.check
    if check.verdict == "likely_counterfeit":
        return 0, -check.probability
    return 1, abs(check.probability - 0.5)


class ReviewQueue:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def rows(self, principal: Principal, wanted: QueueFilter) -> list[QueueRow]:
        """Every row that passes the filter, in queue order."""
        with self.sessions() as session:
            checks = [c for c in session.scalars(self._query(principal, wanted)) if c.evidence]
            rows = _one_per_photo(checks)
            _attach_sources(session, rows)
            session.expunge_all()
        return sorted((r for r in rows if r.matches(wanted)), key=_sort_key)

    def page(self, principal: Principal, wanted: QueueFilter, page: int, size: int) -> dict[str, Any]:
        rows = self.rows(principal, wanted)
        pages = max(1, -(-len(rows) // size))
        page = min(max(page, 1), pages)
        return {
            "rows": rows[(page - 1) * size : page * size],
            "total": len(rows),
            "page": page,
            "pages": pages,
        }

    def neighbours(
        self, principal: Principal, wanted: QueueFilter, check_id: str
    ) -> tuple[str | None, str | None]:
        """The rows before and after ``check_id`` in this queue (None at either end, or when it is not queued)."""
        ids = [r.check.id for r in self.rows(principal, wanted)]
        if check_id not in ids:
            return None, (ids[0] if ids else None)
        at = ids.index(check_id)
        return (ids[at - 1] if at > 0 else None), (ids[at + 1] if at + 1 < len(ids) else None)

    def row(self, principal: Principal, check_id: str) -> QueueRow | None:
        """One check as the queue shows it (its listing and scan), reviewed or not; None if not visible."""
        with self.sessions() as session:
            check = session.get(Check, check_id)
            scope = principal.brand_scope()
            if check is None or check.brand is None or (scope is not None and check.brand != scope):
                return None
            [row] = rows = [QueueRow(check)]
            _attach_sources(session, rows)
            session.expunge_all()
        return row

    def repeats(self, principal: Principal, check_id: str) -> list[str]:
        """The other unreviewed queued checks of the same photo (and brand) as ``check_id``."""
        with self.sessions() as session:
            check = session.get(Check, check_id)
            if check is None or check.brand is None:
                return []
            query = self._query(principal, QueueFilter()).where(
                Check.image_sha256 == check.image_sha256, Check.brand == check.brand, Check.id != check_id
            )
            return [c.id for c in session.scalars(query) if c.evidence]

    @staticmethod
    def _query(principal: Principal, wanted: QueueFilter):
        verdicts = (wanted.verdict,) if wanted.verdict in QUEUED else QUEUED
        query = select(Check).where(
            Check.brand.is_not(None), Check.verdict.in_(verdicts), Check.id.not_in(select(Review.check_id))
        )
        scope = principal.brand_scope()
        if scope:
            query = query.where(Check.brand == scope)
        if wanted.min_probability is not None:
            query = query.where(Check.probability >= wanted.min_probability)
        if wanted.max_probability is not None:
            query = query.where(Check.probability <= wanted.max_probability)
        if wanted.since is not None:
            query = query.where(Check.created_at >= datetime.combine(wanted.since, time(), timezone.utc))
        if wanted.until is not None:
            end = datetime.combine(wanted.until + timedelta(days=1), time(), timezone.utc)
            query = query.where(Check.created_at < end)
        return query.order_by(Check.created_at.desc(), Check.id.desc()).limit(WINDOW)


def _one_per_photo(checks: list[Check]) -> list[QueueRow]:
    """Newest first in, so the first check of each photo is the one shown; the rest are its repeats."""
    rows: dict[str, QueueRow] = {}
    for check in checks:
        row = rows.get(check.image_sha256)
        if row is None:
            rows[check.image_sha256] = QueueRow(check)
        else:
            row.seen += 1
            row.repeat_ids.append(check.id)
    return list(rows.values())


def _attach_sources(session: Session, rows: list[QueueRow]) -> None:
    """The listing (and the scan) each row's check came from, when a listing check or a scan made it."""
    if not rows:
        return
    by_check = {r.check.id: r for r in rows}
    # A listing is stored just after its photos' checks: look from a little before the oldest.
    since = min(aware(r.check.created_at) for r in rows) - timedelta(minutes=5)
    for listing in session.scalars(select(Listing).where(Listing.created_at >= since)):
        for check_id in set(listing.check_ids) & by_check.keys():
            by_check[check_id].listing = listing
    listed: dict[str, list[QueueRow]] = {}
    for row in rows:
        if row.listing is not None:
            listed.setdefault(row.listing.id, []).append(row)
    if listed:
        for listing_id, job_id in session.execute(
            select(ScanItem.listing_check_id, ScanItem.job_id).where(ScanItem.listing_check_id.in_(listed))
        ):
            for row in listed[listing_id]:
                row.scan_id = job_id
