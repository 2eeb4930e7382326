"""Workbench browser sessions: the cookie holds a random token, stored here only as its SHA-256.

A session belongs to a person (username and password, service/core/people.py) or to an API key (for
operators and machines' owners). It is valid ``ui_session_hours`` and only while its person or key
is: a disabled person, a revoked or expired key ends its sessions at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import Principal, authenticate
from service.core.errors import Forbidden
from service.core.people import People, person_principal
from service.core.timestamps import aware, utcnow
from service.db.models import ApiKey, Person, Role, UiSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UiSessions:
    def __init__(self, sessions: sessionmaker[Session], people: People, lifetime: timedelta):
        self.sessions = sessions
        self.people = people
        self.lifetime = lifetime

    def open(self, api_token: str) -> tuple[str, Principal]:
        """A new session for a valid brand, platform or admin key: (cookie token, who)."""
        with self.sessions() as session:
            principal = authenticate(session, f"Bearer {api_token}")
        if principal.role not in (Role.brand, Role.platform, Role.admin):
            raise Forbidden("forbidden", "The workbench is for brand, platform (or admin) keys.")
        return self._start(api_key_id=principal.key_id), principal

    def open_person(self, username: str, password: str) -> tuple[str, Principal]:
        """A new session for a person whose password this is: (cookie token, who)."""
        person = self.people.verify(username, password)
        return self._start(person_id=person.id), person_principal(person)

    def _start(self, api_key_id: str | None = None, person_id: str | None = None) -> str:
        token = secrets.token_urlsafe(32)
        with self.sessions() as session:
            session.add(
                UiSession(
                    token_hash=_hash(token),
                    api_key_id=api_key_id,
                    person_id=person_id,
                    csrf_token=secrets.token_hex(32),
                    expires_at=utcnow() + self.lifetime,
                )
            )
            session.execute(delete(UiSession).where(UiSession.expires_at < utcnow()))  # tidy expired ones
            session.commit()
        return token

    def resolve(self, token: str | None) -> tuple[Principal, str] | None:
        """(who, CSRF token) for a live session whose person or key is still valid; else None."""
        if not token:
            return None
        with self.sessions() as session:
            row = session.get(UiSession, _hash(token))
            if row is None or aware(row.expires_at) <= utcnow():
                return None
            who = _person(session, row.person_id) if row.person_id else _key(session, row.api_key_id)
            return (who, row.csrf_token) if who is not None else None

    def close(self, token: str | None) -> None:
        if token:
            with self.sessions() as session:
                session.execute(delete(UiSession).where(UiSession.token_hash == _hash(token)))
                session.commit()


def _person(session: Session, person_id: str) -> Principal | None:
    person = session.get(Person, person_id)
    return None if person is None or person.disabled_at is not None else person_principal(person)


def _key(session: Session, key_id: str | None) -> Principal | None:
    key = session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
        )
    )
    return (
        None
        if key is None
        else Principal(key_id=key.id, role=key.role, brand=key.brand, platform=key.platform)
    )
