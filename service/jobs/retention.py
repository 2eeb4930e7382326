"""Retention of checked images (kept only for brands whose confirmed fakes join the bank), and collection of
blobs nothing refers to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.blobs import BlobStore
from service.db.models import Check, EvidencePhoto, Reference, ScanItem

# A blob is written before the row that refers to it commits (a registration, a scan's archive photos): one younger
# than this may belong to a request still in flight, and is left for the next round.
ORPHAN_GRACE_SECONDS = 3600.0


def purge_check_images(sessions: sessionmaker[Session], blobs: BlobStore, older_than: timedelta) -> int:
    """Delete stored images of checks older than ``older_than``, unless a newer check or any
    reference (live or deleted: a deletion must stay reversible by an admin) uses the same bytes."""
    cutoff = datetime.now(timezone.utc) - older_than
    with sessions() as session:
        old = set(session.scalars(select(Check.image_sha256).where(Check.created_at < cutoff)))
        still_needed = set(session.scalars(select(Check.image_sha256).where(Check.created_at >= cutoff)))
        still_needed |= set(session.scalars(select(Reference.sha256).where(Reference.sha256.in_(old))))
        still_needed |= set(
            session.scalars(select(EvidencePhoto.sha256).where(EvidencePhoto.sha256.in_(old)))
        )
    removed = 0
    for digest in old - still_needed:
        path = blobs.path_for(digest)
        if path.exists():
            path.unlink()
            removed += 1
    return removed


def collect_orphan_blobs(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
    batch: int = 500,
) -> int:
    """Delete blobs no row refers to — not a reference (live or deleted), a check, a complaint's or test purchase's photo, or a scan listing still to
    check — once older than ``grace_seconds``: what a crash or a refused request left behind."""
    removed = 0
    candidates = list(blobs.older_than(grace_seconds))
    with sessions() as session:
        pending = {
            digest
            for (listing,) in session.execute(select(ScanItem.listing).where(ScanItem.state == "pending"))
            for _, digest in (listing or {}).get("image_blobs", [])
        }
        for start in range(0, len(candidates), batch):
            chunk = candidates[start : start + batch]
            used = set(session.scalars(select(Reference.sha256).where(Reference.sha256.in_(chunk))))
            used |= set(session.scalars(select(Check.image_sha256).where(Check.image_sha256.in_(chunk))))
            used |= set(session.scalars(select(EvidencePhoto.sha256).where(EvidencePhoto.sha256.in_(chunk))))
            for digest in set(chunk) - used - pending:
                blobs.delete(digest)
                removed += 1
    return removed
