"""Brands' reference images: register (idempotent, durable before acknowledged), read, list, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from index.images import pdq_source
from index.local_features import ReferenceKeypoints, reference_keypoints
from index.pdq import compute_pdq
from index.regions import pack as pack_regions
from service.core.audit import audit_event
from service.core.auth import OPERATOR, Principal
from service.core.blobs import BlobStore, sha256_hex
from service.core.cursors import decode_cursor, encode_cursor
from service.core.errors import Conflict, not_found
from service.core.timestamps import iso_utc, utcnow
from service.db.models import Change, ChangeOp, Embedding, Label, Reference, ReferenceKeypointsRow
from service.serving.runner import ServingSlot
from service.serving.uploads import decode_upload


@dataclass(frozen=True)
class NewReference:
    brand: str
    label: Label
    product: str | None = None
    source: str | None = None
    metadata: dict[str, Any] | None = None
    share_signals: bool = False


def reference_to_dict(reference: Reference) -> dict[str, Any]:
    return {
        "id": reference.id,
        "brand": reference.brand,
        "label": reference.label.value,
        "product": reference.product,
        "source": reference.source,
        "sha256": reference.sha256,
        "width": reference.width,
        "height": reference.height,
        "content_type": reference.content_type,
        "pdq": {"hash": reference.pdq_hash, "quality": reference.pdq_quality} if reference.pdq_hash else None,
        "share_signals": reference.share_signals,
        "metadata": reference.extra,
        "created_at": iso_utc(reference.created_at),
    }


class ReferenceRegistry:
    def __init__(self, sessions: sessionmaker[Session], blobs: BlobStore, slot: ServingSlot):
        self.sessions = sessions
        self.blobs = blobs
        self.slot = slot

    def register(self, new: NewReference, data: bytes, actor: Principal = OPERATOR) -> tuple[Reference, bool]:
        """Returns ``(reference, created)``. Acknowledge only after this returns: it is durable then.

        The stored content type is the format the bytes really are, whatever the uploader declared."""
        digest = sha256_hex(data)
        existing = self._live_by_hash(new.brand, digest)
        if existing is not None:
            return self._same_or_conflict(existing, new.label), False
        with self.slot.use() as serving:
            image = decode_upload(data, serving.limits)
            width, height = image.info["source_size"]
            vectors = serving.index_sync.reference_vectors(
                image
            )  # before any write: an overloaded model leaves nothing behind
        pdq = compute_pdq(pdq_source(image))  # the reference hasher's pixels (index.images.reference_rgb)
        keypoints = reference_keypoints(image)  # model-independent: kept across reindexes
        self.blobs.put(data)
        reference = Reference(
            brand=new.brand,
            label=new.label,
            product=new.product,
            source=new.source,
            sha256=digest,
            width=width,
            height=height,
            content_type=image.info["media_type"],
            pdq_hash=pdq.hex,
            pdq_quality=pdq.quality,
            share_signals=new.share_signals,
            extra=new.metadata or {},
        )
        with self.sessions() as session:
            try:
                self._add_rows(session, reference, serving, vectors, keypoints, actor)
                session.commit()
            except IntegrityError:  # a concurrent registration of the same bytes won the race
                session.rollback()
                existing = self._live_by_hash(new.brand, digest)
                if existing is None:
                    raise
                return self._same_or_conflict(existing, new.label), False
        serving.index_sync.catch_up()
        return reference, True

    def preflight(self, brand: str, label: Label, photos: list[bytes]) -> None:
        """Refuse, before anything is written, what ``register`` would refuse for any of these photos (one that
        does not decode, or is already this brand's reference with the other label): several photos
        registered together are all or none as far as the input can tell."""
        with self.slot.use() as serving:
            for data in photos:
                decode_upload(data, serving.limits)
        for data in photos:
            existing = self._live_by_hash(brand, sha256_hex(data))
            if existing is not None:
                self._same_or_conflict(existing, label)

    @staticmethod
    def _add_rows(
        session: Session, reference: Reference, serving, vectors, keypoints, actor: Principal
    ) -> None:
        """The reference and what belongs to it, in its one transaction: the embedding for the served model,
        its keypoints, the change-log row every replica applies, and the audit event."""
        session.add(reference)
        session.flush()
        session.add(
            Embedding(
                reference_id=reference.id,
                fingerprint=serving.runner.info.fingerprint(),
                vector=vectors[0].tobytes(),
                regions=pack_regions(vectors[1:]),
                region_preset=serving.index_sync.reference_regions,
            )
        )
        session.add(ReferenceKeypointsRow(reference_id=reference.id, data=keypoints.to_bytes()))
        session.add(Change(reference_id=reference.id, brand=reference.brand, op=ChangeOp.add))
        session.add(
            audit_event(
                actor,
                "reference.register",
                reference.brand,
                reference.id,
                label=reference.label.value,
                sha256=reference.sha256,
                source=reference.source,
            )
        )

    def _live_by_hash(self, brand: str, digest: str) -> Reference | None:
        with self.sessions() as session:
            return session.scalar(
                select(Reference).where(
                    Reference.brand == brand, Reference.sha256 == digest, Reference.deleted_at.is_(None)
                )
            )

    @staticmethod
    def _same_or_conflict(existing: Reference, label: Label) -> Reference:
        if existing.label != label:
            raise Conflict(
                "label_conflict",
                f"These image bytes are already registered for brand '{existing.brand}' as "
                f"'{existing.label.value}' (reference {existing.id}). Delete that reference first to relabel it.",
            )
        return existing

    def get(self, reference_id: int, brand_scope: str | None) -> Reference:
        with self.sessions() as session:
            reference = session.get(Reference, reference_id)
        if (
            reference is None
            or reference.deleted_at is not None
            or (brand_scope and reference.brand != brand_scope)
        ):
            raise not_found()
        return reference

    def image_bytes(self, reference: Reference) -> bytes:
        return self.blobs.get(reference.sha256)

    def delete(self, reference_id: int, actor: Principal) -> Reference:
        brand_scope = actor.brand_scope()
        with self.sessions() as session:
            reference = session.get(Reference, reference_id)
            if (
                reference is None
                or reference.deleted_at is not None
                or (brand_scope and reference.brand != brand_scope)
            ):
                raise not_found()
            reference.deleted_at = utcnow()
            session.add(Change(reference_id=reference.id, brand=reference.brand, op=ChangeOp.remove))
            session.add(
                audit_event(actor, "reference.delete", reference.brand, reference.id, sha256=reference.sha256)
            )
            session.commit()
        self.slot.current.index_sync.catch_up()
        return reference

    def list(
        self, brand: str | None, label: Label | None, product: str | None, cursor: str | None, limit: int
    ) -> tuple[list[Reference], str | None]:
        query = (
            select(Reference).where(Reference.deleted_at.is_(None)).order_by(Reference.id).limit(limit + 1)
        )
        if brand:
            query = query.where(Reference.brand == brand)
        if label:
            query = query.where(Reference.label == label)
        if product:
            query = query.where(Reference.product == product)
        if cursor is not None:
            query = query.where(Reference.id > decode_cursor(cursor))
        with self.sessions() as session:
            rows = list(session.scalars(query))
        next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return rows[:limit], next_cursor

    def keypoints(self, ids: list[int]) -> dict[int, ReferenceKeypoints]:
        """Stored keypoints of these references (those registered before keypoints were kept have none)."""
        with self.sessions() as session:
            rows = session.execute(
                select(ReferenceKeypointsRow.reference_id, ReferenceKeypointsRow.data).where(
                    ReferenceKeypointsRow.reference_id.in_(ids)
                )
            ).all()
        return {row.reference_id: ReferenceKeypoints.from_bytes(row.data) for row in rows}

    def by_ids(self, ids: list[int]) -> dict[int, Reference]:
        with self.sessions() as session:
            return {
                r.id: r
                for r in session.scalars(
                    select(Reference).where(Reference.id.in_(ids), Reference.deleted_at.is_(None))
                )
            }
