"""API keys and roles.

* ``admin``: everything;
* ``brand``: bound to one brand; registers, lists, reads and deletes only that brand's references
  (another brand's reference looks exactly like a missing one: 404);
* ``platform``: checks images only.

Keys may expire; a rotation issues a new key with the same role and brand and lets the old one
keep working for an overlap, so a client can switch without downtime.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.core.errors import Conflict, NotFound, RateLimited, Unauthenticated
from service.core.timestamps import aware
from service.core.timestamps import utcnow as _now
from service.db.models import Access, ApiKey, Role

TOKEN_PREFIX = "cfk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: str | None  # None: the operator's own CLI on the data directory
    role: Role
    brand: str | None
    request_id: str | None = None
    platform: str | None = None  # a platform key's tenant
    person_id: str | None = None  # a person logged in to the workbench (service/core/people.py), not a key
    person_name: str | None = None  # their username, for pages and histories
    access: Access = Access.manager  # a key acts with its role's full authority; people may have less

    @property
    def actor_id(self) -> str | None:
        """Who acted, as the audit log and decision histories name them: the person, else the key."""
        return self.person_id or self.key_id

    def may_decide(self) -> bool:
        """Viewers read; reviewers and managers (and every key) decide."""
        return self.access is not Access.viewer

    def may_manage(self) -> bool:
        """Managers (and every key) add and disable their tenant's people."""
        return self.access is Access.manager

    def brand_scope(self) -> str | None:
        """The only brand this caller may see, or None for all (admin)."""
        return self.brand if self.role is Role.brand else None

    def platform_scope(self) -> str | None:
        """The only platform tenant whose data this caller may see, or None (admin, brands: every platform's)."""
        return self.platform if self.role is Role.platform else None

    def may_act_for(self, brand: str) -> bool:
        return self.role is Role.admin or (self.role is Role.brand and self.brand == brand)


OPERATOR = Principal(
    key_id=None, role=Role.admin, brand=None
)  # the CLI run by whoever owns the data directory


DEFAULT_PLATFORM = "default"


def create_key(
    session: Session,
    role: Role,
    brand: str | None = None,
    name: str | None = None,
    token: str | None = None,
    expires_at: datetime | None = None,
    platform: str | None = None,
) -> tuple[ApiKey, str]:
    if (role is Role.brand) != (brand is not None):
        raise ValueError("a brand key needs --brand, and only brand keys take one")
    if platform is not None and role is not Role.platform:
        raise ValueError("only platform keys belong to a platform (--platform)")
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id="key_" + secrets.token_hex(6),
        key_hash=hash_token(token),
        role=role,
        brand=brand,
        name=name,
        expires_at=expires_at,
        platform=(platform or DEFAULT_PLATFORM) if role is Role.platform else None,
    )
    session.add(key)
    session.commit()
    return key, token


def ensure_key(session: Session, token: str, role: Role, name: str) -> None:
    """Idempotently make ``token`` a valid key (used for COUNTERFEIT_BOOTSTRAP_ADMIN_KEY)."""
    if session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(token))) is None:
        create_key(session, role, name=name, token=token)


def revoke_key(session: Session, key_id: str) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = _now()
    session.commit()
    return True


def rotate_key(session: Session, key_id: str, overlap: timedelta) -> tuple[ApiKey, str, ApiKey]:
    """A new key like ``key_id`` (same role, brand, name, lifetime left); the old one works ``overlap`` longer.

    Returns ``(new key, its token, old key)``. The caller commits (with its audit row)."""
    old = session.get(ApiKey, key_id)
    if old is None or old.revoked_at is not None or _expired(old):
        raise NotFound("not_found", "No such active key.")
    if old.replaced_by is not None:
        raise Conflict("already_rotated", f"Key {key_id} was already rotated to {old.replaced_by}.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    # A key with a lifetime passes it on: rotating never extends access.
    new = ApiKey(
        id="key_" + secrets.token_hex(6),
        key_hash=hash_token(token),
        role=old.role,
        brand=old.brand,
        platform=old.platform,
        name=old.name,
        expires_at=aware(old.expires_at),
    )
    end_of_overlap = _now() + overlap
    old.expires_at = min(aware(old.expires_at), end_of_overlap) if old.expires_at else end_of_overlap
    old.replaced_by = new.id
    session.add(new)
    return new, token, old


def _expired(key: ApiKey) -> bool:
    return key.expires_at is not None and aware(key.expires_at) <= _now()


def authenticate(session: Session, authorization: str | None, request_id: str | None = None) -> Principal:
    if not authorization:
        raise Unauthenticated(
            "unauthenticated",
            "Missing API key: send 'Authorization: Bearer <key>'.",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "unauthenticated",
            "Malformed Authorization header: expected 'Bearer <key>'.",
        )
    key = session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == hash_token(token.strip()),
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > _now()),
        )
    )
    if key is None:
        raise Unauthenticated(
            "unauthenticated",
            "Unknown, expired or revoked API key.",
        )
    return Principal(
        key_id=key.id, role=key.role, brand=key.brand, request_id=request_id, platform=key.platform
    )


def rate_limit_error(retry_after: float) -> RateLimited:
    seconds = max(1, math.ceil(retry_after))
    return RateLimited(
        "rate_limited",
        f"Too many requests for this key; retry in {seconds} s.",
        retry_after=seconds,
    )
