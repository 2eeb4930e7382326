"""Recompute what is derived from stored reference images: PDQ hashes, keypoints.

Re-hash stored references with PDQ as the reference hasher does (index.images.reference_rgb).

Releases before this one hashed transparent (RGBA/LA), 16-bit and EXIF-rotated images from our
own conversion, so their stored hashes differ from what other deployments compute — and from
what this release computes for queries. ``counterfeit rehash-pdq`` recomputes every live
reference's hash from its blob in the CPU workers, updates the rows that differ and writes an
``add`` change for each, so every replica's PDQ index picks the new hash up from the change log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from index.images import at_least
from index.prepare import CpuWorkers, Prepared, PrepareSpec, prepare_file
from service.core.blobs import BlobStore
from service.db.models import Change, ChangeOp, Reference, ReferenceKeypointsRow


@dataclass
class RehashReport:
    checked: int = 0
    changed: int = 0
    failed: int = 0


def rehash_pdq(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    draft_size: tuple[int, int],
    workers: CpuWorkers,
    chunk: int = 256,
) -> RehashReport:
    spec = PrepareSpec(draft_size=draft_size, pixels=None, want_model_input=False, want_pdq=True)
    with sessions() as session:
        rows = session.execute(
            select(Reference.id, Reference.sha256, Reference.brand, Reference.pdq_hash, Reference.pdq_quality)
            .where(Reference.deleted_at.is_(None))
            .order_by(Reference.id)
        ).all()
    report = RehashReport()
    for part, prepared in _prepared_chunks(rows, blobs, workers, spec, chunk):
        report.checked += len(part)
        with sessions() as session:  # one transaction per chunk: rows and their change records together
            for row, result in zip(part, prepared):
                if result.rejected or result.pdq is None:
                    report.failed += 1
                    continue
                if (result.pdq.hex, result.pdq.quality) == (row.pdq_hash, row.pdq_quality):
                    continue
                session.execute(
                    update(Reference)
                    .where(Reference.id == row.id, Reference.deleted_at.is_(None))
                    .values(pdq_hash=result.pdq.hex, pdq_quality=result.pdq.quality)
                )
                session.add(Change(reference_id=row.id, brand=row.brand, op=ChangeOp.add))
                report.changed += 1
            session.commit()
    return report


@dataclass
class KeypointsReport:
    missing: int = 0
    added: int = 0
    failed: int = 0


def backfill_keypoints(
    sessions: sessionmaker[Session], blobs: BlobStore, workers: CpuWorkers, chunk: int = 256
) -> KeypointsReport:
    """Keypoints (index.local_features) for live references that have none: those registered before
    local-feature verification. Until they have them, checks simply skip verifying against them.
    Nothing in the index changes, so no change record is written."""
    spec = PrepareSpec(
        draft_size=at_least(None), pixels=None, want_model_input=False, want_pdq=False, keypoints="reference"
    )
    with sessions() as session:
        rows = session.execute(
            select(Reference.id, Reference.sha256)
            .outerjoin(ReferenceKeypointsRow, ReferenceKeypointsRow.reference_id == Reference.id)
            .where(Reference.deleted_at.is_(None), ReferenceKeypointsRow.reference_id.is_(None))
            .order_by(Reference.id)
        ).all()
    report = KeypointsReport(missing=len(rows))
    for part, prepared in _prepared_chunks(rows, blobs, workers, spec, chunk):
        with sessions() as session:
            for row, result in zip(part, prepared):
                if result.rejected or result.keypoints is None:
                    report.failed += 1
                    continue
                session.merge(ReferenceKeypointsRow(reference_id=row.id, data=result.keypoints.to_bytes()))
                report.added += 1
            session.commit()
    return report


def _prepared_chunks(
    rows: Sequence[Any], blobs: BlobStore, workers: CpuWorkers, spec: PrepareSpec, chunk: int
) -> Iterator[tuple[Sequence[Any], list[Prepared]]]:
    """Rows (with ``sha256``) in chunks, each with what the workers made from its blobs: one transaction
    per chunk keeps a long run's progress."""
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        yield (
            part,
            list(
                workers.map(prepare_file, [str(blobs.path_for(r.sha256)) for r in part], [spec] * len(part))
            ),
        )
