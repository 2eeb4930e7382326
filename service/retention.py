"""Retention of checked images (kept only for brands whose confirmed fakes join the bank)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.blobs import BlobStore
from service.db.models import Check, Reference


def purge_check_images(sessions: sessionmaker[Session], blobs: BlobStore, older_than: timedelta) -> int:
    """Delete stored images of checks older than ``older_than``, unless a newer check or any
    reference (live or deleted: a deletion must stay reversible by an admin) uses the same bytes."""
    cutoff = datetime.now(timezone.utc) - older_than
    with sessions() as session:
        old = set(session.scalars(select(Check.image_sha256).where(Check.created_at < cutoff)))
        still_needed = set(session.scalars(select(Check.image_sha256).where(Check.created_at >= cutoff)))
        still_needed |= set(session.scalars(select(Reference.sha256).where(Reference.sha256.in_(old))))
    removed = 0
    for digest in old - still_needed:
        path = blobs.path_for(digest)
        if path.exists():
            path.unlink()
            removed += 1
    return removed
