"""The hub's merged feed: derived from members' live reports, appended as a difference, served signed.

One entry per key however many members report it: the strongest report's data (a ``confirmed`` seller
over a ``likely`` one, then the latest expiry) with the provenance subscribers may see — ``reported_by``
(named members) and ``anonymous_reports`` (a count) — and, for sellers, the reporters in the reason.
Like a platform's feed (service/exchange/feed.py) it is refreshed by comparing what should be shared
now with the latest entry per key, so a withdrawal or a revocation can never be forgotten.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.errors import Conflict
from service.core.timestamps import utcnow
from service.exchange.feed import signed_page
from service.exchange.hub.store import HubFeedEntry, HubMember, HubReport


def _strength(report: HubReport) -> tuple:
    return (report.data.get("status") == "confirmed", str(report.data.get("expires_at") or ""), report.member)


def merged_entry(reports: list[HubReport], anonymous: set[str]) -> tuple[str, str, dict[str, Any]]:
    """(type, brand, data) of one key's merged entry."""
    best = max(reports, key=_strength)
    named = sorted({r.member for r in reports} - anonymous)
    hidden = len({r.member for r in reports} & anonymous)
    data = {**best.data, "reported_by": named, "anonymous_reports": hidden}
    if best.type == "seller":
        who = ", ".join(named + ([f"{hidden} anonymous member(s)"] if hidden else []))
        data["reason"] = f"{best.data.get('reason', '')} (reported to the hub by {who})"[:300]
    return best.type, best.brand, data


class MergedFeed:
    def __init__(
        self, sessions: sessionmaker[Session], issuer: str, private_key: str | None, page_size: int = 500
    ):
        self.sessions = sessions
        self.issuer = issuer
        self.private_key = private_key
        self.page_size = page_size

    def refresh(self) -> int:
        now = utcnow()
        with self.sessions() as session:
            anonymous = set(session.scalars(select(HubMember.name).where(HubMember.anonymous.is_(True))))
            by_key: dict[str, list[HubReport]] = {}
            for report in session.scalars(select(HubReport).order_by(HubReport.entry_key, HubReport.member)):
                by_key.setdefault(report.entry_key, []).append(report)
            wanted = {key: merged_entry(reports, anonymous) for key, reports in by_key.items()}
            newest = select(func.max(HubFeedEntry.seq)).group_by(HubFeedEntry.entry_key).scalar_subquery()
            latest = {
                r.entry_key: r
                for r in session.scalars(select(HubFeedEntry).where(HubFeedEntry.seq.in_(newest)))
            }
            appended = [
                HubFeedEntry(entry_key=key, type=kind, brand=brand, op="add", data=data, published_at=now)
                for key, (kind, brand, data) in sorted(wanted.items())
                if key not in latest or latest[key].op != "add" or latest[key].data != data
            ]
            appended += [
                HubFeedEntry(
                    entry_key=key, type=row.type, brand=row.brand, op="withdraw", data=None, published_at=now
                )
                for key, row in sorted(latest.items())
                if row.op == "add" and key not in wanted
            ]
            session.add_all(appended)
            session.commit()
            return len(appended)

    def page(self, since: int) -> dict[str, Any]:
        if not self.private_key:
            raise Conflict(
                "signing_not_configured", "Set COUNTERFEIT_HUB_PRIVATE_KEY to serve the hub's feed."
            )
        with self.sessions() as session:
            rows = list(
                session.scalars(
                    select(HubFeedEntry)
                    .where(HubFeedEntry.seq > since)
                    .order_by(HubFeedEntry.seq)
                    .limit(self.page_size + 1)
                )
            )
        return signed_page(
            rows[: self.page_size], since, len(rows) > self.page_size, self.issuer, self.private_key
        )
