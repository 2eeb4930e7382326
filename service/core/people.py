"""People: analysts' own workbench accounts, so decisions are taken (and audited) by a person, not a shared key.

* A person belongs to one tenant, like a key: a brand (role ``brand``), a platform tenant (``platform``) or
  the service (``admin``), with an access level: ``viewer`` reads, ``reviewer`` also decides, ``manager``
  also adds and disables the tenant's people.
* Who may add whom: an admin key (or the operator's CLI) anyone; a brand key or a brand's manager that
  brand's people; a platform key or a platform's manager that platform's people. Another tenant's person
  looks exactly like a missing one.
* Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed on login when they change). A
  password is chosen by the creator (≥ 12 characters) or generated and shown once.
* Guessing is slowed per account: after ``MAX_FAILED_LOGINS`` wrong passwords in a row the account is
  locked for ``LOCKOUT``; an unknown username costs the same hash as a known one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.core.audit import audit_event
from service.core.auth import DEFAULT_PLATFORM, OPERATOR, Principal
from service.core.errors import Conflict, Forbidden, InvalidInput, RateLimited, Unauthenticated, not_found
from service.core.timestamps import aware, utcnow
from service.db.models import Access, Person, Role, UiSession

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 12
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("an account that does not exist")


@dataclass(frozen=True)
class NewPerson:
    username: str
    access: Access
    role: Role
    brand: str | None = None
    platform: str | None = None
    display_name: str | None = None
    password: str | None = None


def person_principal(person: Person) -> Principal:
    """The workbench's caller for a logged-in person: their tenant and access, no key."""
    return Principal(
        key_id=None,
        role=person.role,
        brand=person.brand,
        platform=person.platform,
        person_id=person.id,
        person_name=person.username,
        access=person.access,
    )


def person_view(person: Person) -> dict:
    return {
        "id": person.id,
        "username": person.username,
        "display_name": person.display_name,
        "role": person.role.value,
        "brand": person.brand,
        "platform": person.platform,
        "access": person.access.value,
        "created_at": aware(person.created_at).isoformat(),
        "created_by": person.created_by,
        "disabled": person.disabled_at is not None,
    }


def _tenant_of(actor: Principal, new: NewPerson) -> NewPerson:
    """The new person's tenant as the actor may grant it: brands and platforms add only their own people."""
    if new.role not in (Role.brand, Role.platform, Role.admin):
        raise InvalidInput("invalid_role", "A person's role is brand, platform or admin.")
    if new.role is Role.brand and not new.brand:
        raise InvalidInput("brand_required", "A brand's person needs its brand.")
    if new.role is not Role.brand and new.brand:
        raise InvalidInput("brand_not_allowed", "Only a brand's people belong to a brand.")
    if new.role is not Role.platform and new.platform:
        raise InvalidInput("platform_not_allowed", "Only a platform's people belong to a platform.")
    if not actor.may_manage():
        raise Forbidden("forbidden", "Only a manager (or a key) adds and disables people.")
    own_platform = actor.platform if actor.role is Role.platform else None
    platform = (new.platform or own_platform or DEFAULT_PLATFORM) if new.role is Role.platform else None
    if actor.role is not Role.admin:
        if actor.role not in (Role.brand, Role.platform):
            raise Forbidden("forbidden", "This key may not add people.")
        if new.role is not actor.role or new.brand != actor.brand or platform != own_platform:
            raise Forbidden("other_tenant", "You may add people to your own brand or platform only.")
    return NewPerson(**{**new.__dict__, "platform": platform})


def _checked_password(password: str | None) -> str:
    if password is None:
        return secrets.token_urlsafe(15)  # 120 random bits, shown once
    if not MIN_PASSWORD <= len(password) <= 200:
        raise InvalidInput("weak_password", f"A password has {MIN_PASSWORD} to 200 characters.")
    return password


class People:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def create(self, new: NewPerson, actor: Principal = OPERATOR) -> tuple[Person, str]:
        """The new person and their password (generated when none was given: shown to the creator once)."""
        if not USERNAME.match(new.username):
            raise InvalidInput(
                "invalid_username", "A username has 3-64 characters: a-z, 0-9 and . _ @ - (lower case)."
            )
        new = _tenant_of(actor, new)
        password = _checked_password(new.password)
        person = Person(
            id="psn_" + secrets.token_hex(8),
            username=new.username,
            display_name=new.display_name,
            password_hash=_hasher.hash(password),
            role=new.role,
            brand=new.brand,
            platform=new.platform,
            access=new.access,
            created_by=actor.actor_id,
        )
        with self.sessions() as session:
            session.add(person)
            session.add(audit_event(actor, "person.create", new.brand, person.id, access=new.access.value))
            try:
                session.commit()
            except IntegrityError:
                raise Conflict("username_taken", f"The username '{new.username}' is taken.") from None
            session.refresh(person)
            session.expunge(person)
        return person, password

    def list(self, actor: Principal) -> list[Person]:
        query = select(Person).order_by(Person.username)
        if actor.role is Role.brand:
            query = query.where(Person.role == Role.brand, Person.brand == actor.brand)
        elif actor.role is Role.platform:
            query = query.where(Person.role == Role.platform, Person.platform == actor.platform)
        with self.sessions() as session:
            return list(session.scalars(query))

    def _managed(self, session: Session, actor: Principal, person_id: str) -> Person:
        person = session.get(Person, person_id)
        visible = person is not None and (
            actor.role is Role.admin
            or (actor.role is Role.brand and person.role is Role.brand and person.brand == actor.brand)
            or (
                actor.role is Role.platform
                and person.role is Role.platform
                and person.platform == actor.platform
            )
        )
        if not visible:
            raise not_found("person")
        if not actor.may_manage():
            raise Forbidden("forbidden", "Only a manager (or a key) adds and disables people.")
        return person

    def disable(self, person_id: str, actor: Principal = OPERATOR) -> Person:
        """No more logins; their open sessions end now. Their past decisions keep their name."""
        with self.sessions() as session:
            person = self._managed(session, actor, person_id)
            if person.disabled_at is None:
                person.disabled_at = utcnow()
                session.execute(delete(UiSession).where(UiSession.person_id == person.id))
                session.add(audit_event(actor, "person.disable", person.brand, person.id))
                session.commit()
            session.refresh(person)
            session.expunge(person)
        return person

    def reset_password(self, person_id: str, actor: Principal = OPERATOR) -> str:
        """A new generated password (shown once); the old one and the person's sessions stop working."""
        password = _checked_password(None)
        with self.sessions() as session:
            person = self._managed(session, actor, person_id)
            person.password_hash = _hasher.hash(password)
            person.failed_logins, person.locked_until = 0, None
            session.execute(delete(UiSession).where(UiSession.person_id == person.id))
            session.add(audit_event(actor, "person.reset_password", person.brand, person.id))
            session.commit()
        return password

    def verify(self, username: str, password: str) -> Person:
        """The person whose password this is; 401 otherwise (429 while the account is locked)."""
        with self.sessions() as session:
            person = session.scalar(select(Person).where(Person.username == username.strip().lower()))
            if person is None or person.disabled_at is not None:
                _verify(_DUMMY_HASH, password)  # the same cost whether or not the account exists
                raise Unauthenticated("bad_login", "Unknown username or wrong password.")
            now = utcnow()
            if person.locked_until is not None and aware(person.locked_until) > now:
                seconds = int((aware(person.locked_until) - now).total_seconds()) + 1
                raise RateLimited(
                    "locked", f"Too many wrong passwords; try again in {seconds} s.", retry_after=seconds
                )
            if not _verify(person.password_hash, password):
                person.failed_logins += 1
                if person.failed_logins >= MAX_FAILED_LOGINS:
                    person.failed_logins, person.locked_until = 0, now + LOCKOUT
                session.commit()
                raise Unauthenticated("bad_login", "Unknown username or wrong password.")
            person.failed_logins, person.locked_until = 0, None
            if _hasher.check_needs_rehash(person.password_hash):
                person.password_hash = _hasher.hash(password)
            session.commit()
            session.refresh(person)
            session.expunge(person)
        return person


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
