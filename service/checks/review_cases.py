"""Review cases: a brand's analysts group the checks of one listing or one seller and work them as one.

* **One case per subject**: opening a case for a listing (or a seller on a marketplace) that has one returns
  it; its checks are the queue's rows of that listing or seller, reviewed or not.
* **Status workflow**: new → reviewing → action taken → closed; a case may be closed from any state (dismissed)
  and a closed one reopened (reviewing). Any other move is refused (409), and two analysts moving the same case
  at once cannot both win: the status changes by a conditional update.
* **Assignment** to one of the brand's own people, and **notes**; every change is kept in the case's history
  and the audit log under the person who made it. Viewers read cases; reviewers and managers change them.
* Another brand's case looks exactly like a missing one.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.checks.review_queue import QueueFilter, QueueRow, ReviewQueue
from service.core.audit import audit_event
from service.core.auth import Principal
from service.core.errors import Conflict, Forbidden, InvalidInput, not_found
from service.core.timestamps import iso_utc, utcnow
from service.db.models import Person, ReviewCase, Role

STATUSES = ("new", "reviewing", "action_taken", "closed")
MOVES = {
    "new": {"reviewing", "closed"},
    "reviewing": {"action_taken", "closed"},
    "action_taken": {"closed", "reviewing"},
    "closed": {"reviewing"},
}
KINDS = ("listing", "seller")


def _entry(principal: Principal, **fields: Any) -> dict[str, Any]:
    return {"at": iso_utc(utcnow()), "by": principal.person_name or principal.actor_id, **fields}


def _may_change(principal: Principal) -> None:
    if not principal.may_decide():
        raise Forbidden("viewer", "Your account may read cases but not change them; ask your manager.")


class ReviewCases:
    def __init__(self, sessions: sessionmaker[Session], queue: ReviewQueue):
        self.sessions = sessions
        self.queue = queue

    def open(self, principal: Principal, brand: str, kind: str, marketplace: str, subject: str) -> ReviewCase:
        """The brand's case about this listing or seller, made now unless it exists."""
        _may_change(principal)
        if kind not in KINDS or not subject:
            raise InvalidInput("invalid_case", "A case is about a listing or a seller, named by its id.")
        if not principal.may_act_for(brand):
            raise not_found("case")
        with self.sessions() as session:
            found = self._find(session, brand, kind, marketplace, subject)
            if found is not None:
                session.expunge(found)
                return found
            case = ReviewCase(
                id="rcs_" + secrets.token_hex(8),
                brand=brand,
                subject_kind=kind,
                marketplace=marketplace,
                subject=subject,
                status="new",
                notes=[],
                history=[_entry(principal, event="opened")],
            )
            session.add(case)
            session.add(
                audit_event(principal, "review_case.open", brand, case.id, kind=kind, subject=subject)
            )
            try:
                session.commit()
            except IntegrityError:  # another analyst opened it at the same moment: theirs
                session.rollback()
                found = self._find(session, brand, kind, marketplace, subject)
                session.expunge(found)
                return found
            session.refresh(case)
            session.expunge(case)
        return case

    @staticmethod
    def _find(session: Session, brand: str, kind: str, marketplace: str, subject: str) -> ReviewCase | None:
        return session.scalar(
            select(ReviewCase).where(
                ReviewCase.brand == brand,
                ReviewCase.subject_kind == kind,
                ReviewCase.marketplace == marketplace,
                ReviewCase.subject == subject,
            )
        )

    def list(self, principal: Principal, status: str | None = None) -> list[ReviewCase]:
        query = select(ReviewCase).order_by(ReviewCase.updated_at.desc()).limit(500)
        if principal.brand_scope() is not None:
            query = query.where(ReviewCase.brand == principal.brand_scope())
        if status:
            query = query.where(ReviewCase.status == status)
        with self.sessions() as session:
            cases = list(session.scalars(query))
            session.expunge_all()
        return cases

    def get(self, principal: Principal, case_id: str) -> ReviewCase:
        with self.sessions() as session:
            case = self._visible(session, principal, case_id)
            session.expunge(case)
        return case

    @staticmethod
    def _visible(session: Session, principal: Principal, case_id: str) -> ReviewCase:
        case = session.get(ReviewCase, case_id)
        if case is None or not (principal.role is Role.admin or principal.brand_scope() == case.brand):
            raise not_found("case")
        return case

    @staticmethod
    def moves(status: str) -> set[str]:
        """Where a case in ``status`` may go next."""
        return MOVES.get(status, set())

    def rows(self, principal: Principal, case: ReviewCase) -> list[QueueRow]:
        """The case's checks as the queue shows them (unreviewed ones; decided ones leave the queue)."""
        if case.subject_kind == "seller":
            wanted = QueueFilter(seller=case.subject, marketplace=case.marketplace or None)
        else:
            wanted = QueueFilter(search=case.subject)
        rows = self.queue.rows(principal, wanted)
        if case.subject_kind == "listing":
            rows = [r for r in rows if r.listing is not None and r.listing.listing_id == case.subject]
        return [r for r in rows if r.check.brand == case.brand]

    def move(self, principal: Principal, case_id: str, status: str) -> ReviewCase:
        _may_change(principal)
        with self.sessions() as session:
            case = self._visible(session, principal, case_id)
            if status not in MOVES.get(case.status, set()):
                raise Conflict("case_status", f"A {case.status} case cannot become {status}.")
            changed = session.execute(
                update(ReviewCase)
                .where(ReviewCase.id == case.id, ReviewCase.status == case.status)
                .values(status=status, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if changed != 1:
                raise Conflict("case_status", "Someone changed this case meanwhile: reload it.")
            case.history = [*case.history, _entry(principal, event=status)]
            session.add(audit_event(principal, "review_case.status", case.brand, case.id, status=status))
            session.commit()
        return self.get(principal, case_id)

    def assign(self, principal: Principal, case_id: str, person_id: str | None) -> ReviewCase:
        _may_change(principal)
        with self.sessions() as session:
            case = self._visible(session, principal, case_id)
            name = None
            if person_id:
                person = session.get(Person, person_id)
                if person is None or person.brand != case.brand or person.disabled_at is not None:
                    raise InvalidInput("assignee", "Assign the case to one of the brand's own people.")
                name = person.username
            case.assignee_id = person_id or None
            case.updated_at = utcnow()
            case.history = [*case.history, _entry(principal, event="assigned", to=name)]
            session.add(audit_event(principal, "review_case.assign", case.brand, case.id, to=person_id))
            session.commit()
        return self.get(principal, case_id)

    def note(self, principal: Principal, case_id: str, text: str) -> ReviewCase:
        _may_change(principal)
        if not text.strip() or len(text) > 2000:
            raise InvalidInput("note", "A note has 1 to 2,000 characters.")
        with self.sessions() as session:
            case = self._visible(session, principal, case_id)
            case.notes = [*case.notes, _entry(principal, text=text.strip())]
            case.updated_at = utcnow()
            session.add(audit_event(principal, "review_case.note", case.brand, case.id))
            session.commit()
        return self.get(principal, case_id)
