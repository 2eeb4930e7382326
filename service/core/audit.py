"""The audit log of state-changing actions: who registered, deleted, reviewed, changed a policy,
imported signals, started or cancelled a job, rotated a key.

Domain code adds the event to the *same* session (and so the same transaction) as the change it
records: an action is never committed without its audit row, nor the row without the action.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import Principal
from service.core.cursors import decode_cursor, encode_cursor
from service.db.models import AuditEvent


def audit_event(
    actor: Principal, action: str, brand: str | None = None, target: object = None, **details: Any
) -> AuditEvent:
    return AuditEvent(
        actor_key_id=actor.key_id,
        actor_role=actor.role.value,
        actor_person_id=actor.person_id,
        action=action,
        brand=brand,
        target=None if target is None else str(target),
        details=details,
        request_id=actor.request_id,
    )


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def record(
        self, actor: Principal, action: str, brand: str | None = None, target: object = None, **details: Any
    ) -> None:
        """For actions whose change is not a row of ours (e.g. a job started in another thread)."""
        with self.sessions() as session:
            session.add(audit_event(actor, action, brand, target, **details))
            session.commit()

    def list(
        self, brand_scope: str | None, action: str | None, cursor: str | None, limit: int
    ) -> tuple[list[AuditEvent], str | None]:
        """Newest first. A brand sees only events about its own data."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
        if brand_scope is not None:
            query = query.where(AuditEvent.brand == brand_scope)
        if action:
            query = query.where(AuditEvent.action == action)
        if cursor is not None:
            query = query.where(AuditEvent.id < decode_cursor(cursor))
        with self.sessions() as session:
            rows = list(session.scalars(query))
        return rows[:limit], (encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)
