"""API keys and roles.

* ``admin``: everything;
* ``brand``: bound to one brand; registers, lists, reads and deletes only that brand's references
  (another brand's reference looks exactly like a missing one: 404);
* ``platform``: checks images only.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import ApiKey, Role
from service.errors import ApiError

TOKEN_PREFIX = "cfk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    brand: str | None

    def brand_scope(self) -> str | None:
        """The only brand this caller may see, or None for all (admin)."""
        return self.brand if self.role is Role.brand else None

    def may_act_for(self, brand: str) -> bool:
        return self.role is Role.admin or (self.role is Role.brand and self.brand == brand)


def create_key(session: Session, role: Role, brand: str | None = None, name: str | None = None,
               token: str | None = None) -> tuple[ApiKey, str]:
    if (role is Role.brand) != (brand is not None):
        raise ValueError("a brand key needs --brand, and only brand keys take one")
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id="key_" + secrets.token_hex(6), key_hash=hash_token(token), role=role, brand=brand, name=name)
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
    key.revoked_at = datetime.now(timezone.utc)
    session.commit()
    return True


def authenticate(session: Session, authorization: str | None) -> Principal:
    if not authorization:
        raise ApiError(401, "unauthenticated", "Missing API key: send 'Authorization: Bearer <key>'.",
                       headers={"WWW-Authenticate": "Bearer"})
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "Malformed Authorization header: expected 'Bearer <key>'.",
                       headers={"WWW-Authenticate": "Bearer"})
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(token.strip()), ApiKey.revoked_at.is_(None)))
    if key is None:
        raise ApiError(401, "unauthenticated", "Unknown or revoked API key.", headers={"WWW-Authenticate": "Bearer"})
    return Principal(key_id=key.id, role=key.role, brand=key.brand)


def require(*roles: Role):
    """FastAPI dependency: the caller, if its role is one of ``roles`` (admin always passes)."""
    allowed = set(roles) | {Role.admin}

    def dependency(request: Request) -> Principal:
        runtime = request.app.state.runtime
        with runtime.sessions() as session:
            principal = authenticate(session, request.headers.get("authorization"))
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise ApiError(403, "forbidden", f"This endpoint needs one of the roles: {names}; your key is '{principal.role.value}'.")
        return principal

    return dependency
