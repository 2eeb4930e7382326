"""Transparency reports: what a platform tenant (or every platform: None) did about one brand's counterfeits in a period.

"Tell brands what we are doing": per brand, platform and period (dates, UTC, both ends included) —
checks run, flagged and confirmed; complaints filed, fast-tracked, upheld, rejected, still open, the
median time to a decision and the service-level breaches; listings and sellers actioned and repeat
infringers; scans; test purchases by outcome; exchange signals sent and received; and weekly trends
(ISO weeks). Counts only: no seller identifier, photo or other tenant's data is in a report.

* **Confirmed**: a check a review confirmed counterfeit (an upheld complaint reviews its checks).
* **Actioned**: a listing an upheld complaint took action on (removed, restricted, warned) or a test
  purchase confirmed counterfeit; its seller is actioned. A **repeat infringer** is a seller actioned
  twice or more in the period.
* **Signals** are the deployment's exchange (this platform's feed, and what trusted peers sent) for the
  brand: the exchange is per deployment, not per tenant.

Counted in the database (grouped by day for the trends), so a year of a busy platform is one query each.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.errors import InvalidInput
from service.core.timestamps import aware, iso_utc, utcnow
from service.db.models import (
    ApiKey,
    Check,
    Complaint,
    FeedEntry,
    Job,
    Label,
    Review,
    ScanItem,
    SharedSellerSignal,
    SharedSignal,
    TestPurchase,
)

MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 28


def period(start: date | None, end: date | None) -> tuple[date, date]:
    """The report's days: by default the last four weeks up to today; at most a year."""
    end = end or utcnow().date()
    start = start or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise InvalidInput("invalid_period", "start must not be after end.")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput("invalid_period", f"A report covers at most {MAX_PERIOD_DAYS} days.")
    return start, end


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, timezone.utc),
        datetime.combine(end + timedelta(days=1), time.min, timezone.utc),
    )


def _week(day: Any) -> str:
    year, week, _ = date.fromisoformat(str(day)[:10]).isocalendar()
    return f"{year}-W{week:02d}"


class Reports:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def brand_report(self, brand: str, platform: str | None, start: date, end: date) -> dict[str, Any]:
        since, until = _bounds(start, end)
        with self.sessions() as session:
            checks, weekly = _checks(session, brand, platform, since, until)
            complaints, actioned, complaint_weeks = _complaints(session, brand, platform, since, until)
            purchases, confirmed_sellers = _test_purchases(session, brand, platform, since, until)
            actioned += confirmed_sellers
            scans = _scans(session, brand, platform, since, until)
            signals = _signals(session, brand, since, until)
        for week, counts in complaint_weeks.items():
            weekly.setdefault(week, Counter()).update(counts)
        by_seller = Counter(actioned)
        return {
            "brand": brand,
            "platform": platform,
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "generated_at": iso_utc(utcnow()),
            "checks": checks,
            "complaints": complaints,
            "listings_actioned": len(actioned),
            "sellers": {
                "actioned": len(by_seller),
                "repeat_infringers": sum(1 for n in by_seller.values() if n >= 2),
            },
            "scans": scans,
            "test_purchases": purchases,
            "shared_signals": signals,
            "weekly": [_week_row(week, weekly.get(week)) for week in _weeks(start, end)],
        }


def _weeks(start: date, end: date) -> list[str]:
    weeks, day = [], start
    while day <= end:
        if _week(day) not in weeks:
            weeks.append(_week(day))
        day += timedelta(days=1)
    return weeks


WEEKLY_FIELDS = ("checks", "flagged", "complaints_filed", "complaints_upheld")


def _week_row(week: str, counts: Counter | None) -> dict[str, Any]:
    return {"week": week, **{name: (counts or Counter())[name] for name in WEEKLY_FIELDS}}


def _platform_keys(platform: str | None):
    """Keys of the platform tenant (None: of every platform tenant)."""
    return select(ApiKey.id).where(ApiKey.platform == platform if platform else ApiKey.platform.is_not(None))


def _of(column, platform: str | None):
    return column == platform if platform else column.is_not(None)


def _checks(session, brand, platform, since, until) -> tuple[dict[str, int], dict[str, Counter]]:
    scope = (
        Check.brand == brand,
        Check.api_key_id.in_(_platform_keys(platform)),
        Check.created_at >= since,
        Check.created_at < until,
    )
    day = func.date(Check.created_at)
    weekly: dict[str, Counter] = {}
    for when, verdict, count in session.execute(
        select(day, Check.verdict, func.count()).where(*scope).group_by(day, Check.verdict)
    ):
        counts = weekly.setdefault(_week(when), Counter())
        counts["checks"] += count
        if verdict == "likely_counterfeit":
            counts["flagged"] += count
    confirmed = session.scalar(
        select(func.count(func.distinct(Review.check_id))).where(
            Review.label == Label.counterfeit, Review.check_id.in_(select(Check.id).where(*scope))
        )
    )
    totals = sum(weekly.values(), Counter())
    return {"run": totals["checks"], "flagged": totals["flagged"], "confirmed": confirmed}, weekly


def _complaints(session, brand, platform, since, until):
    rows = session.scalars(
        select(Complaint).where(
            Complaint.brand == brand,
            _of(Complaint.platform, platform),
            Complaint.created_at >= since,
            Complaint.created_at < until,
        )
    ).all()
    states = Counter(c.state for c in rows)
    decided = [c for c in rows if c.decided_at is not None]
    hours = [(aware(c.decided_at) - aware(c.created_at)).total_seconds() / 3600 for c in decided]
    weekly: dict[str, Counter] = {}
    for c in rows:
        weekly.setdefault(_week(aware(c.created_at).date()), Counter())["complaints_filed"] += 1
        if c.state == "upheld":
            weekly.setdefault(_week(aware(c.decided_at).date()), Counter())["complaints_upheld"] += 1
    actioned = [
        (c.listing.get("marketplace"), c.listing.get("seller_id")) for c in rows if c.state == "upheld"
    ]
    summary = {
        "filed": len(rows),
        "fast_tracked": sum(1 for c in rows if c.lane == "fast"),
        "upheld": states["upheld"],
        "rejected": states["rejected"],
        "open": states["open"],
        "median_hours_to_decision": round(statistics.median(hours), 2) if hours else None,
        "sla_breaches": sum(1 for c in decided if (c.decision or {}).get("breached"))
        + sum(1 for c in rows if c.state == "open" and aware(c.due_at) < utcnow()),
    }
    return summary, actioned, weekly


def _test_purchases(session, brand, platform, since, until):
    rows = session.scalars(
        select(TestPurchase).where(
            TestPurchase.brand == brand,
            _of(TestPurchase.platform, platform),
            TestPurchase.created_at >= since,
            TestPurchase.created_at < until,
        )
    ).all()
    outcomes = Counter(p.outcome for p in rows)
    confirmed = [
        (p.listing.get("marketplace"), p.listing.get("seller_id"))
        for p in rows
        if p.outcome == "counterfeit_confirmed"
    ]
    summary = {name: outcomes[name] for name in ("counterfeit_confirmed", "genuine", "not_delivered")}
    return summary, confirmed


def _scans(session, brand, platform, since, until) -> dict[str, int]:
    jobs = [
        job_id
        for job_id, params in session.execute(
            select(Job.id, Job.params).where(
                Job.kind == "scan", Job.created_at >= since, Job.created_at < until
            )
        )
        if platform is None or (params or {}).get("platform") == platform
    ]
    items = Counter(
        dict(
            session.execute(
                select(ScanItem.verdict, func.count())
                .where(ScanItem.job_id.in_(jobs), ScanItem.brand == brand)
                .group_by(ScanItem.verdict)
            ).all()
        )
    )
    return {"runs": len(jobs), "listings": sum(items.values()), "flagged": items["likely_counterfeit"]}


def _signals(session, brand, since, until) -> dict[str, int]:
    sent = session.scalar(
        select(func.count()).where(
            FeedEntry.brand == brand,
            FeedEntry.op == "add",
            FeedEntry.published_at >= since,
            FeedEntry.published_at < until,
        )
    )
    received = session.scalar(
        select(func.count()).where(
            SharedSignal.brand == brand, SharedSignal.imported_at >= since, SharedSignal.imported_at < until
        )
    ) + session.scalar(
        select(func.count()).where(
            SharedSellerSignal.brand == brand,
            SharedSellerSignal.imported_at >= since,
            SharedSellerSignal.imported_at < until,
        )
    )
    return {"sent": sent, "received": received}


SECTIONS = ("checks", "complaints", "sellers", "scans", "test_purchases", "shared_signals")


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The report's figures as (section, metric, value), in the order every rendering shows them."""
    rows = [(section, metric, value) for section in SECTIONS for metric, value in report[section].items()]
    rows.insert(
        len(report["checks"]) + len(report["complaints"]),
        ("listings", "actioned", report["listings_actioned"]),
    )
    return rows


def report_csv(report: dict[str, Any]) -> str:
    """Two tables in one CSV: the figures (section, metric, value), then the weekly trends."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["brand", report["brand"], "platform", report["platform"] or "all platforms"])
    writer.writerow(["period", report["period"]["start"], report["period"]["end"]])
    writer.writerow(["section", "metric", "value"])
    writer.writerows((s, m, "" if v is None else v) for s, m, v in report_rows(report))
    writer.writerow([])
    writer.writerow(["week", *WEEKLY_FIELDS])
    writer.writerows([row["week"], *(row[name] for name in WEEKLY_FIELDS)] for row in report["weekly"])
    return out.getvalue()
