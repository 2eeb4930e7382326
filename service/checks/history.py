"""Reading checks back: one check by id, and a paged list with filters, each caller within its tenancy.

A platform key sees the checks its own tenant's keys made; a brand key the checks judged to be about its
brand (whoever made them); an admin every check; another tenant's check is 404, like a missing one.
The list is newest first and pages by a keyset cursor (the last check's time and id), so a page never
repeats or skips a check however many arrive meanwhile.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import Principal
from service.core.errors import InvalidInput, not_found
from service.core.timestamps import aware, iso_utc
from service.db.models import ApiKey, Check, Review, Role

CHECK_CURSOR = re.compile(r"^[0-9]{1,16}-[A-Za-z0-9_]{1,40}$")  # microseconds since 1970 (to year 2286), id


def _visible(principal: Principal):
    """The SQL condition for the checks ``principal`` may read."""
    if principal.role is Role.platform:
        return Check.api_key_id.in_(select(ApiKey.id).where(ApiKey.platform == principal.platform))
    if principal.role is Role.brand:
        return Check.brand == principal.brand
    return Check.id.is_not(None)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _cursor(check: Check) -> str:
    return f"{(aware(check.created_at) - _EPOCH) // _MICROSECOND}-{check.id}"  # integer arithmetic: exact


def _after(cursor: str):
    if not CHECK_CURSOR.fullmatch(cursor):
        raise InvalidInput("invalid_cursor", "The cursor is not one this API returned.")
    micros, check_id = cursor.split("-", 1)
    try:
        at = _EPOCH + int(micros) * _MICROSECOND
    except OverflowError:  # past datetime's range: no cursor this API returned
        raise InvalidInput("invalid_cursor", "The cursor is not one this API returned.") from None
    return or_(Check.created_at < at, and_(Check.created_at == at, Check.id < check_id))


def check_to_dict(check: Check, reviews: list[Review]) -> dict[str, Any]:
    return {
        "check_id": check.id,
        "created_at": iso_utc(check.created_at),
        "verdict": check.verdict,
        "counterfeit_probability": check.probability,
        "brand": check.brand,
        "brand_hint": check.brand_hint,
        "evidence": check.evidence or [],
        "scorer": check.scorer,
        "model_fingerprint": check.model_fingerprint,
        "image_sha256": check.image_sha256,
        "pdq": {"hash": check.pdq_hash, "quality": check.pdq_quality} if check.pdq_hash else None,
        "reviews": [
            {"label": r.label.value, "note": r.note, "created_at": iso_utc(r.created_at)} for r in reviews
        ],
    }


class CheckHistory:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def get(self, check_id: str, principal: Principal) -> dict[str, Any]:
        with self.sessions() as session:
            check = session.scalars(select(Check).where(Check.id == check_id, _visible(principal))).first()
            if check is None:
                raise not_found("check")
            reviews = session.scalars(
                select(Review).where(Review.check_id == check.id).order_by(Review.id)
            ).all()
            return check_to_dict(check, list(reviews))

    def list(
        self,
        principal: Principal,
        verdict: str | None = None,
        brand: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Newest first; ``next_cursor`` is null on the last page."""
        query = select(Check).where(_visible(principal))
        if verdict:
            query = query.where(Check.verdict == verdict)
        if brand:
            query = query.where(Check.brand == brand)
        if since:
            query = query.where(Check.created_at >= since)
        if until:
            query = query.where(Check.created_at < until)
        if cursor:
            query = query.where(_after(cursor))
        with self.sessions() as session:
            checks = list(
                session.scalars(query.order_by(Check.created_at.desc(), Check.id.desc()).limit(limit + 1))
            )
            page = checks[:limit]
            reviews: dict[str, list[Review]] = {}
            for review in session.scalars(
                select(Review).where(Review.check_id.in_([c.id for c in page])).order_by(Review.id)
            ):
                reviews.setdefault(review.check_id, []).append(review)
            return {
                "items": [check_to_dict(c, reviews.get(c.id, [])) for c in page],
                "next_cursor": _cursor(page[-1]) if len(checks) > limit else None,
            }
