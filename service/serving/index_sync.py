"""Keeps the in-memory FAISS index equal to the database by applying the change log.

The database is the source of truth. Every registration or deletion commits a row in
``changes`` together with the reference (and its embedding); :meth:`IndexSync.catch_up` applies
all changes after the last applied sequence number. Writers call it right after their commit, a
background task calls it periodically (picking up other processes' writes, e.g. the bulk-import
CLI), and start-up calls it after loading the last snapshot, so a crash loses nothing that the
database acknowledged.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from index.embedder import EmbedderInfo
from index.generations import Generation, Generations
from index.pdq import PdqHash, PdqIndex
from index.regions import crops, reference_regions
from index.regions import pack as pack_regions
from index.regions import unpack as unpack_regions
from index.vector_index import VectorIndex
from service.core.blobs import BlobStore
from service.db.models import Change, ChangeOp, Embedding, Reference
from service.serving.uploads import ImageLimits, decode_reference_image

log = logging.getLogger(__name__)
CHANGE_BATCH = 5000


class IndexModelMismatch(RuntimeError):
    pass


class IndexSync:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        generations: Generations,
        model: EmbedderInfo,
        blobs: BlobStore,
        embed: Callable[[Sequence[Image.Image]], np.ndarray],
        limits: ImageLimits,
        snapshot_every: int,
        persist_snapshots: Callable[[], bool] = lambda: True,
        reference_regions: str = "whole",
        share_snapshot: Callable[[Generation], None] = lambda g: None,
    ):
        self.sessions = sessions
        self.generations = generations
        self.model = model
        self.blobs = blobs
        self.embed = embed
        self.limits = limits  # re-embedding a blob must decode exactly like registration did
        self.snapshot_every = snapshot_every
        # Only one serving process (the lease holder) writes snapshots; CLI processes and other
        # replicas read them and catch up in memory.
        self.persist_snapshots = persist_snapshots
        # Replicas without this disk fetch the snapshot from the shared store (service.serving.generation_store); shared
        # after the lock is released, since an upload may take a while.
        self.share_snapshot = share_snapshot
        self._share_due = False
        self.reference_regions = (
            reference_regions  # the preset a reference embedded here gets (index/regions.py)
        )
        self.index = VectorIndex(model.dimension)
        self.pdq = PdqIndex()  # model-independent; rebuilt from the database on open (32 bytes a reference)
        self.generation: Generation | None = None
        self.applied_seq = 0
        self._unsnapshotted = 0
        self._lock = threading.Lock()

    # -- start-up ---------------------------------------------------------------------------
    def open(self, generation: Generation | None = None) -> None:
        """Load a generation's snapshot (default: the current one; generation 1 on a fresh install) and catch up."""
        generation = generation or self.generations.current()
        if generation is None:
            generation = self.generations.create(self.model.as_dict())
            self.generations.activate(generation)
        elif generation.fingerprint != self.model.fingerprint():
            built_with = generation.model_info()
            raise IndexModelMismatch(
                f"The index (generation {generation.number}) was built with model '{built_with['spec']}' "
                f"(fingerprint {built_with['fingerprint']}), but the service is configured with "
                f"'{self.model.spec}' (fingerprint {self.model.fingerprint()}). Embeddings of two models are "
                f"not comparable. Run a reindex to '{self.model.spec}', or set COUNTERFEIT_MODEL back to "
                f"'{built_with['spec']}'."
            )
        self.generation = generation
        if generation.snapshot_path.exists():
            self.index, meta = VectorIndex.load(generation.snapshot_path)
            self.applied_seq = int(meta["applied_seq"])
        log.info(
            "Index generation %d loaded: %d references (%d vectors) up to change %d",
            generation.number,
            len(self.index),
            self.index.vector_count,
            self.applied_seq,
        )
        if self.index.stride == 1 and self.reference_regions != "whole":
            log.warning(
                "Index generation %d predates reference regions: it keeps whole-image vectors only until "
                "`counterfeit reindex` builds a new generation",
                generation.number,
            )
        applied = self.catch_up()
        self.reconcile()
        self._load_pdq()
        if applied:
            self.snapshot()

    def reconcile(self) -> None:
        """Safety net after replay: embed live references missing from the index, drop ids the DB does not have."""
        with self._lock, self.sessions() as session:
            live = dict(
                session.execute(
                    select(Reference.id, Reference.brand).where(Reference.deleted_at.is_(None))
                ).all()
            )
            in_index = self.index.ids()
            stray = sorted(in_index - live.keys())
            missing = sorted(live.keys() - in_index)
            if stray:
                log.warning("Removing %d index entries with no live reference", len(stray))
                self.index.remove(stray)
                self.pdq.remove(stray)
            if missing:
                log.warning("Adding %d live references missing from the index", len(missing))
                self._add(session, missing)

    def _load_pdq(self) -> None:
        with self._lock, self.sessions() as session:
            rows = session.execute(
                select(Reference.id, Reference.pdq_hash, Reference.pdq_quality).where(
                    Reference.deleted_at.is_(None), Reference.pdq_hash.is_not(None)
                )
            ).all()
            self.pdq.add([rid for rid, _, _ in rows], [PdqHash.from_hex(h, q) for _, h, q in rows])

    # -- change log ---------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every change after ``applied_seq``; returns how many were applied."""
        total = 0
        with self._lock:
            while True:
                with self.sessions() as session:
                    changes = session.scalars(
                        select(Change)
                        .where(Change.seq > self.applied_seq)
                        .order_by(Change.seq)
                        .limit(CHANGE_BATCH)
                    ).all()
                    if not changes:
                        break
                    final_op: dict[int, ChangeOp] = {}
                    for change in changes:  # only the last op per reference in the batch matters
                        final_op[change.reference_id] = change.op
                    removed = [rid for rid, op in final_op.items() if op is ChangeOp.remove]
                    self.index.remove(removed)
                    self.pdq.remove(removed)
                    self._add(session, [rid for rid, op in final_op.items() if op is ChangeOp.add])
                    self.applied_seq = changes[-1].seq
                    total += len(changes)
            self._unsnapshotted += total
            if self._unsnapshotted >= self.snapshot_every:
                self._snapshot_locked()
        self._share_if_due()
        return total

    def _add(self, session: Session, reference_ids: list[int]) -> None:
        """Add live references to the index, embedding (and storing) any that have no vector for this model."""
        if not reference_ids:
            return
        fingerprint = self.model.fingerprint()
        references = {
            r.id: r
            for r in session.scalars(
                select(Reference).where(Reference.id.in_(reference_ids), Reference.deleted_at.is_(None))
            )
        }
        vectors, regions = {}, {}
        for e in session.scalars(
            select(Embedding).where(
                Embedding.reference_id.in_(references), Embedding.fingerprint == fingerprint
            )
        ):
            vectors[e.reference_id] = np.frombuffer(e.vector, dtype=np.float32)
            regions[e.reference_id] = unpack_regions(e.regions, self.model.dimension)
        for rid in sorted(references.keys() - vectors.keys()):
            embedded = self._embed_blob(references[rid])
            if embedded is not None:
                vectors[rid], regions[rid] = embedded[0], embedded[1:]
                session.add(
                    Embedding(
                        reference_id=rid,
                        fingerprint=fingerprint,
                        vector=embedded[0].tobytes(),
                        regions=pack_regions(embedded[1:]),
                        region_preset=self.reference_regions,
                    )
                )
        session.commit()
        ids = sorted(vectors)
        if ids:
            self.index.add(
                ids,
                np.stack([vectors[i] for i in ids]),
                [references[i].brand for i in ids],
                [regions[i] for i in ids],
            )
        hashed = [r for r in references.values() if r.pdq_hash]
        self.pdq.add([r.id for r in hashed], [PdqHash.from_hex(r.pdq_hash, r.pdq_quality) for r in hashed])

    def _embed_blob(self, reference: Reference) -> np.ndarray | None:
        """The reference's vectors: its whole image's, then its regions'."""
        image = decode_reference_image(lambda: self.blobs.get(reference.sha256), self.limits)
        if isinstance(image, str):  # one broken blob must not stop the index from loading
            log.error("Reference %d cannot be indexed: %s", reference.id, image)
            return None
        return self.reference_vectors(image)

    def reference_vectors(self, image: Image.Image) -> np.ndarray:
        """A reference image's vectors as stored and indexed: the whole image's, then each of its regions'."""
        return self.embed(crops(image, reference_regions(self.reference_regions)))

    # -- snapshots and reads -----------------------------------------------------------------------
    def snapshot(self) -> None:
        with self._lock:
            self._snapshot_locked()
        self._share_if_due()

    def _share_if_due(self) -> None:
        if self._share_due and self.generation is not None:
            self._share_due = False
            try:
                self.share_snapshot(self.generation)
            except Exception:  # the local snapshot is written; sharing is retried with the next one
                log.exception("Sharing the snapshot of index generation %d failed", self.generation.number)

    def _snapshot_locked(self) -> None:
        assert self.generation is not None
        if not self.persist_snapshots():
            return
        self.index.save(
            self.generation.snapshot_path,
            {"applied_seq": self.applied_seq, "fingerprint": self.model.fingerprint()},
        )
        self._unsnapshotted = 0
        self._share_due = True

    def search(self, vectors: np.ndarray, k: int, brand: str | None) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(vectors, k, brand)


def latest_change_seq(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.coalesce(func.max(Change.seq), 0))))
