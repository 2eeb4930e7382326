"""Leases in the database: the holder of a lease does the work that must happen once cluster-wide.

No advisory locks or external coordinator: one row per lease, taken over by a conditional UPDATE
(or the first INSERT), so it works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.core.timestamps import utcnow
from service.db.models import Lease


def process_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leases:
    def __init__(self, sessions: sessionmaker[Session], holder: str, ttl_seconds: float):
        self.sessions = sessions
        self.holder = holder
        self.ttl = timedelta(seconds=ttl_seconds)

    def hold(self, name: str) -> bool:
        """Take or renew ``name`` for one lease period; True if this process holds it now."""
        now = utcnow()
        with self.sessions() as session:
            renewed = session.execute(
                update(Lease)
                .where(Lease.name == name, or_(Lease.holder == self.holder, Lease.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.ttl)
            ).rowcount
            if not renewed:
                session.add(Lease(name=name, holder=self.holder, expires_at=now + self.ttl))
            try:
                session.commit()
            except IntegrityError:  # someone else holds it (its row exists and has not expired)
                session.rollback()
                return False
            return True

    def release(self, name: str) -> None:
        """Give the lease up at once (clean shutdown), so another replica need not wait for it to expire."""
        with self.sessions() as session:
            session.execute(delete(Lease).where(Lease.name == name, Lease.holder == self.holder))
            session.commit()
