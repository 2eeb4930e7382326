"""Review-page browser sessions: the cookie holds a random token, stored here only as its SHA-256.

A session is valid ``ui_session_hours`` and only while its API key is: a revoked or expired key
ends its sessions at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import Principal, authenticate
from service.core.errors import Forbidden
from service.core.timestamps import aware, utcnow
from service.db.models import ApiKey, Role, UiSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UiSessions:
    def __init__(self, sessions: sessionmaker[Session], lifetime: timedelta):
        self.sessions = sessions
        self.lifetime = lifetime

    def open(self, api_token: str) -> tuple[str, Principal]:
        """A new session for a valid brand, platform or admin key: (cookie token, who)."""
        with self.sessions() as session:
            principal = authenticate(session, f"Bearer {api_token}")
            if principal.role not in (Role.brand, Role.platform, Role.admin):
                raise Forbidden("forbidden", "The workbench is for brand, platform (or admin) keys.")
            token = secrets.token_urlsafe(32)
            session.add(
                UiSession(
                    token_hash=_hash(token),
                    api_key_id=principal.key_id,
                    csrf_token=secrets.token_hex(32),
                    expires_at=utcnow() + self.lifetime,
                )
            )
            session.execute(delete(UiSession).where(UiSession.expires_at < utcnow()))  # tidy expired ones
            session.commit()
        return token, principal

    def resolve(self, token: str | None) -> tuple[Principal, str] | None:
        """(who, CSRF token) for a live session whose key is still valid; else None."""
        if not token:
            return None
        with self.sessions() as session:
            row = session.get(UiSession, _hash(token))
            if row is None or aware(row.expires_at) <= utcnow():
                return None
            key = session.scalar(
                select(ApiKey).where(
                    ApiKey.id == row.api_key_id,
                    ApiKey.revoked_at.is_(None),
                    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow()),
                )
            )
            if key is None:
                return None
            return Principal(
                key_id=key.id, role=key.role, brand=key.brand, platform=key.platform
            ), row.csrf_token

    def close(self, token: str | None) -> None:
        if token:
            with self.sessions() as session:
                session.execute(delete(UiSession).where(UiSession.token_hash == _hash(token)))
                session.commit()
