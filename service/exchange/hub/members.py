"""Hub members: who may publish what, their API keys, revocation and statistics."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.auth import hash_token
from service.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from service.core.timestamps import iso_utc, utcnow
from service.exchange.hub.store import HubMember, HubReport

TYPES = ("pdq", "seller")
HUB_TOKEN_PREFIX = "cfh_"


def _valid_public_key(value: str) -> str:
    try:
        if len(base64.b64decode(value, validate=True)) == 32:
            return value
    except ValueError:
        pass
    raise InvalidInput(
        "invalid_public_key", "public_key must be a raw Ed25519 public key in base64 (32 bytes)."
    )


class HubMembers:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def add(
        self,
        name: str,
        public_key: str,
        types: list[str],
        brands: list[str],
        anonymous: bool = False,
        feed_url: str | None = None,
        feed_api_key: str | None = None,
    ) -> str:
        """Register a member; returns its hub API key (shown once; only its hash is kept)."""
        if not types or set(types) - set(TYPES):
            raise InvalidInput("invalid_types", f"types must be some of: {', '.join(TYPES)}.")
        if not brands:
            raise InvalidInput("invalid_brands", "brands: the brands it may publish about, or * for any.")
        token = HUB_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.sessions() as session:
            if session.get(HubMember, name) is not None:
                raise Conflict("member_exists", f"{name} is already a member.")
            session.add(
                HubMember(
                    name=name,
                    public_key=_valid_public_key(public_key),
                    types=sorted(set(types)),
                    brands=sorted(set(brands)),
                    anonymous=anonymous,
                    api_key_hash=hash_token(token),
                    feed_url=feed_url,
                    feed_api_key=feed_api_key,
                )
            )
            session.commit()
        return token

    def authenticate(self, authorization: str | None) -> HubMember:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("unauthenticated", "Send 'Authorization: Bearer <hub key>'.")
        with self.sessions() as session:
            member = session.scalar(
                select(HubMember).where(HubMember.api_key_hash == hash_token(token.strip()))
            )
        if member is None:
            raise Unauthenticated("unauthenticated", "Unknown hub key.")
        if member.revoked_at is not None:
            raise Forbidden("revoked", f"Member {member.name} was revoked.")
        return member

    def revoke(self, name: str) -> int:
        """Refuse the member's pages from now on and withdraw everything it reported; how many reports went."""
        with self.sessions() as session:
            member = session.get(HubMember, name)
            if member is None:
                raise NotFound("not_found", f"No member {name}.")
            member.revoked_at = member.revoked_at or utcnow()
            gone = session.execute(delete(HubReport).where(HubReport.member == name)).rowcount
            session.commit()
        return gone

    def stats(self, name: str | None = None) -> list[dict[str, Any]]:
        """Per member: live entries, entries another member reported too, refusals, cursor."""
        with self.sessions() as session:
            members = session.scalars(
                select(HubMember).where(HubMember.name == name)
                if name
                else select(HubMember).order_by(HubMember.name)
            ).all()
            published = dict(
                session.execute(select(HubReport.member, func.count()).group_by(HubReport.member)).all()
            )
            shared_keys = select(HubReport.entry_key).group_by(HubReport.entry_key).having(func.count() > 1)
            matched = dict(
                session.execute(
                    select(HubReport.member, func.count())
                    .where(HubReport.entry_key.in_(shared_keys))
                    .group_by(HubReport.member)
                ).all()
            )
        return [
            {
                "member": m.name,
                "anonymous": m.anonymous,
                "types": m.types,
                "brands": m.brands,
                "published": published.get(m.name, 0),
                "matched_by_others": matched.get(m.name, 0),
                "pages_refused": m.pages_refused,
                "entries_refused": m.entries_refused,
                "cursor": m.cursor,
                "last_error": m.last_error,
                "revoked_at": iso_utc(m.revoked_at) if m.revoked_at else None,
            }
            for m in members
        ]
