"""Fast-tracked complaints: a brand's notice about a listing on a platform tenant → triage → decision.

* **Filing** (a brand key, or an admin for a brand): the platform tenant that decides it, the listing (the
  platform's listing id and/or URL, seller, title), the claim, a statement, the brand's references it relies
  on, and evidence: photos, or the platform's own listing check of that listing id (``POST
  /v1/listings/check`` or a scan), or both. Photos are checked through the listing path (each photo its
  own check row) but make **no listing row**: a complaint does not raise a seller's risk until it is upheld.
  The photos are kept as evidence (``evidence_photos``), outside check-image retention.
* **Triage** (``complaint_triage``): the model's verdict, the complainant's track record and the seller's
  risk on that platform give a score; at or above the platform's fast-track bar the complaint goes to the
  fast lane, with that lane's service level (``PlatformPolicy``; defaults below). The due time is fixed
  at filing; a decision after it is a breach (counted in ``/metrics``, shown on the complaint).
* **Decision** (the platform's key, or an admin): *upheld* with the action taken, or *rejected* with a
  reason. An upheld complaint is confirmed evidence: each of its photos' checks (or the platform listing's)
  gets a counterfeit review, so the seller's record counts it as confirmed, and where the brand opted in
  (its policy's ``auto_add_confirmed_counterfeits``) the photos join its known-fake bank; without a platform
  listing row one is added for the platform.
* **Counter-notice** (the platform, relaying the seller's): reopens an upheld complaint with a fresh due
  time and withdraws what the uphold added (reviews, listing row, bank references) until it is decided again.
* Who sees what: the complainant brand its own complaints, the platform those filed with it, an admin all;
  anyone else's id is 404. Webhooks: ``complaint.filed``, ``complaint.fast_tracked``, ``complaint.decided``,
  ``complaint.reopened`` go to the brand's and the platform's endpoints.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.checks.reviews import ReviewService
from service.core.audit import audit_event
from service.core.auth import Principal
from service.core.blobs import BlobStore
from service.core.errors import Conflict, InvalidInput, NotFound, not_found
from service.core.metrics import Metrics
from service.core.timestamps import aware, iso_utc, utcnow
from service.db.models import (
    Check,
    Complaint,
    EvidencePhoto,
    Label,
    Listing,
    PlatformPolicy,
    Review,
    Role,
)
from service.exchange.webhooks import Event, enqueue
from service.marketplace.complaint_triage import TrackRecord, triage_score
from service.marketplace.listings import ListingChecker, ListingFacts
from service.marketplace.sellers import of_platform, platform_exists
from service.references.registry import ReferenceRegistry

CLAIMS = ("counterfeit", "image_copy", "trademark")
ACTIONS = ("removed", "restricted", "warned")


@dataclass(frozen=True)
class ComplaintPolicy:
    fast_track_bar: float = 0.8
    fast_sla_hours: float = 24.0
    normal_sla_hours: float = 168.0

    def sla_hours(self, lane: str) -> float:
        return self.fast_sla_hours if lane == "fast" else self.normal_sla_hours


DEFAULT_POLICY = ComplaintPolicy()


@dataclass(frozen=True)
class NewComplaint:
    platform: str
    brand: str
    claim: str
    statement: str
    listing: ListingFacts
    reference_ids: tuple[int, ...] = ()
    photos: list[tuple[str | None, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """What triage judged: the model's probability and verdict, the seller's record, the checks behind it."""

    probability: float | None
    verdict: str | None
    seller: dict[str, Any] | None
    check_ids: list[str]
    listing_ref: str | None


def _visible(complaint: Complaint | None, principal: Principal) -> Complaint:
    if complaint is None:
        raise not_found("complaint")
    if principal.role is Role.brand and complaint.brand != principal.brand:
        raise not_found("complaint")
    if principal.role is Role.platform and complaint.platform != principal.platform:
        raise not_found("complaint")
    return complaint


def complaint_to_dict(complaint: Complaint, photos: Iterable[EvidencePhoto] = ()) -> dict[str, Any]:
    due = aware(complaint.due_at)
    now = utcnow()
    return {
        "id": complaint.id,
        "platform": complaint.platform,
        "brand": complaint.brand,
        "claim": complaint.claim,
        "statement": complaint.statement,
        "listing": {**complaint.listing, "listing_check_id": complaint.listing_ref},
        "reference_ids": complaint.reference_ids,
        "photos": [{"sha256": p.sha256, "check_id": p.check_id} for p in photos],
        "triage": complaint.triage,
        "lane": complaint.lane,
        "state": complaint.state,
        "sla": {
            "due_at": iso_utc(due),
            "breached": (aware(complaint.decided_at) if complaint.decided_at else now) > due,
        },
        "decision": complaint.decision,
        "history": complaint.history,
        "created_at": iso_utc(complaint.created_at),
        "decided_at": iso_utc(complaint.decided_at) if complaint.decided_at else None,
    }


class ComplaintService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        listings: ListingChecker,
        reviews: ReviewService,
        registry: ReferenceRegistry,
        metrics: Metrics,
        default_k: int,
        on_event: Callable[[], None] = lambda: None,
    ):
        self.sessions = sessions
        self.blobs = blobs
        self.listings = listings
        self.reviews = reviews
        self.registry = registry
        self.metrics = metrics
        self.default_k = default_k
        self.on_event = on_event  # wakes the webhook deliverer

    # ---- policy -------------------------------------------------------------------------------------
    def policy(self, platform: str) -> ComplaintPolicy:
        with self.sessions() as session:
            row = session.get(PlatformPolicy, platform)
        if row is None:
            return DEFAULT_POLICY
        return ComplaintPolicy(row.fast_track_bar, row.fast_sla_hours, row.normal_sla_hours)

    def put_policy(self, platform: str, policy: ComplaintPolicy, actor: Principal) -> ComplaintPolicy:
        if not 0 < policy.fast_track_bar <= 1:
            raise InvalidInput("invalid_policy", "fast_track_bar must be in (0, 1].")
        for name in ("fast_sla_hours", "normal_sla_hours"):
            if not 0 < getattr(policy, name) <= 8760:
                raise InvalidInput("invalid_policy", f"{name} must be in (0, 8760] hours.")
        if policy.fast_sla_hours > policy.normal_sla_hours:
            raise InvalidInput(
                "invalid_policy", "The fast lane's service level cannot be longer than the normal one."
            )
        with self.sessions() as session:
            row = session.get(PlatformPolicy, platform) or PlatformPolicy(platform=platform)
            row.fast_track_bar, row.fast_sla_hours = policy.fast_track_bar, policy.fast_sla_hours
            row.normal_sla_hours, row.updated_at = policy.normal_sla_hours, utcnow()
            session.add(row)
            session.add(audit_event(actor, "complaint_policy.put", None, platform, **policy.__dict__))
            session.commit()
        return policy

    # ---- filing -------------------------------------------------------------------------------------
    async def file(self, new: NewComplaint, principal: Principal) -> dict[str, Any]:
        self._validate(new)
        record = self._platform_listing(new.platform, new.listing)
        if not new.photos and record is None:
            raise InvalidInput(
                "no_evidence",
                "A complaint needs evidence: the listing's photos, or the listing_id of a listing this "
                "platform checked (POST /v1/listings/check or a scan).",
            )
        evidence = await self._evidence(new, record, principal)
        track = self.track_record(new.brand)
        seller_risk = evidence.seller["risk"] if evidence.seller else None
        score, factors = triage_score(evidence.probability, track, seller_risk)
        policy = self.policy(new.platform)
        lane = "fast" if score >= policy.fast_track_bar else "normal"
        triage = {
            "score": score,
            "fast_track_bar": policy.fast_track_bar,
            "model_probability": evidence.probability,
            "model_verdict": evidence.verdict,
            "seller_risk": seller_risk,
            "track_record": track.as_dict(),
            "factors": factors,
        }
        complaint = self._store(new, evidence, triage, lane, policy, principal)
        self.metrics.complaints_filed.labels(lane).inc()
        self.on_event()
        return complaint

    def _validate(self, new: NewComplaint) -> None:
        if new.claim not in CLAIMS:
            raise InvalidInput("invalid_claim", f"claim must be one of: {', '.join(CLAIMS)}.")
        if not (new.listing.listing_id or new.listing.url):
            raise InvalidInput(
                "listing_required", "Name the listing: its listing_id on the platform, or its url."
            )
        if new.listing.seller_id and not new.listing.marketplace:
            raise InvalidInput("marketplace_required", "seller_id is per marketplace: give marketplace too.")
        with self.sessions() as session:
            known = platform_exists(session, new.platform)
        if not known:
            raise InvalidInput(
                "unknown_platform", f"No platform tenant '{new.platform}' takes complaints here."
            )
        found = self.registry.by_ids(list(new.reference_ids))
        unknown = sorted(i for i in set(new.reference_ids) if i not in found or found[i].brand != new.brand)
        if unknown:  # another brand's reference reads exactly like a missing one
            raise InvalidInput(
                "unknown_reference",
                f"No live reference of {new.brand} with id(s): {', '.join(map(str, unknown))}.",
            )

    def _platform_listing(self, platform: str, facts: ListingFacts) -> Listing | None:
        """The platform's latest check of this listing id (in this marketplace, when given)."""
        if not facts.listing_id:
            return None
        query = select(Listing).where(Listing.listing_id == facts.listing_id, of_platform(platform))
        if facts.marketplace:
            query = query.where(Listing.marketplace == facts.marketplace)
        with self.sessions() as session:
            return session.scalars(query.order_by(Listing.created_at.desc()).limit(1)).first()

    async def _evidence(self, new: NewComplaint, record: Listing | None, principal: Principal) -> Evidence:
        if not new.photos:
            seller = self.listings.sellers.risk(record.marketplace, record.seller_id, (), new.platform)
            return Evidence(record.probability, record.verdict, seller, list(record.check_ids), record.id)
        score, seller, photos = await self.listings.assess(
            new.photos, new.listing, new.brand, self.default_k, principal.key_id, new.platform
        )
        check_ids = [p["result"]["check_id"] for p in photos if p["status"] == 200]
        return Evidence(score.probability, score.verdict, seller, check_ids, record.id if record else None)

    def track_record(self, brand: str) -> TrackRecord:
        """The brand's decided complaints on every platform (only counts: no platform's decisions are shown)."""
        with self.sessions() as session:
            counts = dict(
                session.execute(
                    select(Complaint.state, func.count())
                    .where(Complaint.brand == brand, Complaint.state.in_(("upheld", "rejected")))
                    .group_by(Complaint.state)
                ).all()
            )
        return TrackRecord(counts.get("upheld", 0), counts.get("rejected", 0))

    def _store(
        self,
        new: NewComplaint,
        evidence: Evidence,
        triage: dict[str, Any],
        lane: str,
        policy: ComplaintPolicy,
        principal: Principal,
    ) -> dict[str, Any]:
        now = utcnow()
        digests = [self.blobs.put(data) for _, data in new.photos]  # orphans of a failed commit are collected
        facts = new.listing
        complaint = Complaint(
            id="cmp_" + uuid.uuid4().hex,
            platform=new.platform,
            brand=new.brand,
            claim=new.claim,
            statement=new.statement,
            listing={
                "listing_id": facts.listing_id,
                "url": facts.url,
                "marketplace": facts.marketplace,
                "seller_id": facts.seller_id,
                "title": facts.title,
            },
            listing_ref=evidence.listing_ref,
            photo_check_ids=evidence.check_ids if new.photos else [],
            reference_ids=sorted(set(new.reference_ids)),
            triage=triage,
            lane=lane,
            state="open",
            due_at=now + timedelta(hours=policy.sla_hours(lane)),
            upheld_review_ids=[],
            history=[{"at": iso_utc(now), "event": "filed", "by": principal.actor_id, "lane": lane}],
            api_key_id=principal.key_id,
            created_at=now,
        )
        photo_checks = evidence.check_ids if new.photos else []
        with self.sessions() as session:
            session.add(complaint)
            session.flush()
            photos = [
                EvidencePhoto(owner_id=complaint.id, sha256=d, check_id=c)
                for d, c in zip(digests, photo_checks + [None] * len(digests))
            ]
            session.add_all(photos)
            session.add(audit_event(principal, "complaint.file", new.brand, complaint.id, lane=lane))
            names = ["complaint.filed"] + (["complaint.fast_tracked"] if lane == "fast" else [])
            enqueue(session, [self._event(name, complaint) for name in names])
            session.commit()
            return complaint_to_dict(complaint, photos)

    @staticmethod
    def _event(name: str, complaint: Complaint) -> Event:
        payload = {
            "complaint_id": complaint.id,
            "platform": complaint.platform,
            "lane": complaint.lane,
            "state": complaint.state,
            "triage_score": complaint.triage["score"],
            "due_at": iso_utc(complaint.due_at),
            "listing": complaint.listing,
            "decision": complaint.decision,
        }
        return Event(name, complaint.brand, payload, complaint.api_key_id, platform=complaint.platform)

    # ---- reading ------------------------------------------------------------------------------------
    def get(self, complaint_id: str, principal: Principal) -> dict[str, Any]:
        with self.sessions() as session:
            complaint = _visible(session.get(Complaint, complaint_id), principal)
            photos = session.scalars(
                select(EvidencePhoto).where(EvidencePhoto.owner_id == complaint.id).order_by(EvidencePhoto.id)
            ).all()
            return complaint_to_dict(complaint, photos)

    def list(
        self,
        principal: Principal,
        state: str | None = None,
        lane: str | None = None,
        overdue: bool | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The caller's complaints: open ones first, the fast lane before the normal and earliest due first."""
        query = select(Complaint)
        if principal.role is Role.brand:
            query = query.where(Complaint.brand == principal.brand)
        elif principal.role is Role.platform:
            query = query.where(Complaint.platform == principal.platform)
        if state:
            query = query.where(Complaint.state == state)
        if lane:
            query = query.where(Complaint.lane == lane)
        if overdue is not None:
            late = (Complaint.state == "open") & (Complaint.due_at < utcnow())
            query = query.where(late if overdue else ~late)
        order = (Complaint.state != "open", Complaint.lane != "fast", Complaint.due_at, Complaint.id)
        with self.sessions() as session:
            return [complaint_to_dict(c) for c in session.scalars(query.order_by(*order).limit(limit))]

    def overdue_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(
                select(func.count()).where(Complaint.state == "open", Complaint.due_at < utcnow())
            )

    # ---- deciding -----------------------------------------------------------------------------------
    def decide(
        self, complaint_id: str, outcome: str, action: str | None, reason: str | None, principal: Principal
    ) -> dict[str, Any]:
        """Uphold (with the action taken) or reject (with a reason) an open complaint; 409 when it is not open.
        Two deciders at once: one wins, the other gets 409 (the state changes by a conditional update)."""
        _refuse_bad_decision(outcome, action, reason)
        now = utcnow()
        with self.sessions() as session:
            complaint = _visible(session.get(Complaint, complaint_id), principal)
            _claim(session, complaint, "open", outcome)
            breached = now > aware(complaint.due_at)
            complaint.decision = {
                "outcome": outcome,
                "action": action,
                "reason": reason,
                "by": principal.actor_id,
                "breached": breached,
                "added_reference_ids": [],
            }
            complaint.decided_at = now
            complaint.history = [
                *complaint.history,
                {"at": iso_utc(now), "event": outcome, "by": principal.actor_id},
            ]
            reviewed: list[tuple[Review, Check]] = []
            if outcome == "upheld":
                reviewed = self._confirm(session, complaint, action, principal)
            session.add(
                audit_event(principal, "complaint.decide", complaint.brand, complaint.id, outcome=outcome)
            )
            enqueue(session, [self._event("complaint.decided", complaint)])
            session.commit()
        self._bank(complaint_id, reviewed, principal)
        hours = (now - aware(complaint.created_at)).total_seconds() / 3600
        self.metrics.complaint_decisions.labels(outcome, complaint.lane, str(breached).lower()).inc()
        self.metrics.complaint_decision_hours.labels(complaint.lane).observe(hours)
        self.on_event()
        return self.get(complaint_id, principal)

    def _confirm(
        self, session: Session, complaint: Complaint, action: str | None, principal: Principal
    ) -> list[tuple[Review, Check]]:
        """An upheld complaint as confirmed evidence: a counterfeit review of each of its checks (the
        complainant's brand's, or brandless), and a listing row for the platform when it had none."""
        if complaint.listing_ref:
            listing = session.get(Listing, complaint.listing_ref)
            check_ids = list(listing.check_ids) if listing else []
        else:
            check_ids = list(complaint.photo_check_ids)
            listing = _upheld_listing(complaint, check_ids)
            session.add(listing)
            complaint.upheld_listing_ref = listing.id
        checks = session.scalars(
            select(Check).where(
                Check.id.in_(check_ids), or_(Check.brand == complaint.brand, Check.brand.is_(None))
            )
        ).all()
        note = f"complaint {complaint.id} upheld: {action}"
        reviewed = [
            (ReviewService.record(session, check, Label.counterfeit, principal, note, None), check)
            for check in checks
        ]
        complaint.upheld_review_ids = [review.id for review, _ in reviewed]
        return reviewed

    def _bank(self, complaint_id: str, reviewed: list[tuple[Review, Check]], principal: Principal) -> None:
        """Where the brand opted in, the upheld complaint's photos join its known-fake bank (after the decision
        commits: a refused decision adds nothing)."""
        added = {}
        for review, check in reviewed:
            reference_id, _ = self.reviews.bank_if_opted_in(check, Label.counterfeit, principal)
            if reference_id is not None:
                added[review.id] = reference_id
        if not added:
            return
        with self.sessions() as session:
            for review_id, reference_id in added.items():
                session.get(Review, review_id).added_reference_id = reference_id
            complaint = session.get(Complaint, complaint_id)
            complaint.decision = {**complaint.decision, "added_reference_ids": sorted(set(added.values()))}
            session.commit()

    def counter_notice(self, complaint_id: str, statement: str, principal: Principal) -> dict[str, Any]:
        """The seller's counter-notice (relayed by the platform) reopens an upheld complaint with a fresh due
        time, and withdraws what the uphold added until it is decided again."""
        now = utcnow()
        with self.sessions() as session:
            complaint = _visible(session.get(Complaint, complaint_id), principal)
            _claim(session, complaint, "upheld", "open")
            added = (complaint.decision or {}).get("added_reference_ids", [])
            for review_id in complaint.upheld_review_ids:
                review = session.get(Review, review_id)
                if review is not None:
                    session.delete(review)
            if complaint.upheld_listing_ref and (
                listing := session.get(Listing, complaint.upheld_listing_ref)
            ):
                session.delete(listing)
            complaint.history = [
                *complaint.history,
                {
                    "at": iso_utc(now),
                    "event": "counter_notice",
                    "by": principal.actor_id,
                    "statement": statement,
                    "previous_decision": complaint.decision,
                },
            ]
            complaint.decision, complaint.decided_at, complaint.upheld_listing_ref = None, None, None
            complaint.upheld_review_ids = []
            complaint.due_at = now + timedelta(
                hours=self.policy(complaint.platform).sla_hours(complaint.lane)
            )
            session.add(audit_event(principal, "complaint.counter_notice", complaint.brand, complaint.id))
            enqueue(session, [self._event("complaint.reopened", complaint)])
            session.commit()
        for reference_id in added:  # the bank no longer holds what a disputed decision put there
            with contextlib.suppress(NotFound):  # the brand may have deleted it already
                self.registry.delete(reference_id, principal)
        self.on_event()
        return self.get(complaint_id, principal)


def _refuse_bad_decision(outcome: str, action: str | None, reason: str | None) -> None:
    if outcome == "upheld" and action not in ACTIONS:
        raise InvalidInput(
            "action_required", f"An upheld complaint says the action taken: one of {', '.join(ACTIONS)}."
        )
    if outcome == "rejected" and (not reason or action is not None):
        raise InvalidInput("reason_required", "A rejected complaint gives the reason, and no action.")
    if outcome not in ("upheld", "rejected"):
        raise InvalidInput("invalid_outcome", "outcome must be upheld or rejected.")


def _claim(session: Session, complaint: Complaint, expected: str, new_state: str) -> None:
    """Move the complaint from ``expected`` to ``new_state`` if nobody else did first (409 otherwise)."""
    changed = session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.state == expected)
        .values(state=new_state)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise Conflict(
            "complaint_state",
            f"Complaint {complaint.id} is {complaint.state}, not {expected}: it cannot be changed so.",
        )
    complaint.state = new_state


def _upheld_listing(complaint: Complaint, check_ids: list[str]) -> Listing:
    facts = complaint.listing
    return Listing(
        id="lst_" + uuid.uuid4().hex,
        listing_id=facts.get("listing_id"),
        seller_id=facts.get("seller_id"),
        marketplace=facts.get("marketplace"),
        brand=complaint.brand,
        verdict=complaint.triage.get("model_verdict") or "no_match",
        probability=complaint.triage.get("model_probability") or 0.5,
        check_ids=check_ids,
        title=facts.get("title"),
        url=facts.get("url"),
        platform=complaint.platform,
    )
