"""Which index generation a deployment serves, for replicas that share no disk.

The current generation is a row in the database (``index_pointer``: its number and model), not only the
``CURRENT`` file of one disk, and its snapshot is shared through the blob store (the bucket, when images are
in one). A replica on an empty local directory starts on the pointer's generation from the shared snapshot
(plus the change log); a reindex or rollback on any replica moves the pointer, and every replica follows
it: it adopts that generation locally (fetching its snapshot, or building it from the stored embeddings,
never re-embedding) and swaps. With one shared data directory (a single host) the pointer and the local
``CURRENT`` agree and nothing is fetched.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from index.generations import Generation, Generations
from service.core.blobs import BlobStore
from service.core.timestamps import utcnow
from service.db.models import IndexPointer

log = logging.getLogger(__name__)


def snapshot_name(generation: Generation) -> str:
    return f"generations/{generation.number}/{generation.fingerprint}/index.npz"


class GenerationStore:
    def __init__(self, sessions: sessionmaker[Session], generations: Generations, blobs: BlobStore):
        self.sessions = sessions
        self.generations = generations
        self.blobs = blobs

    def pointer(self) -> IndexPointer | None:
        with self.sessions() as session:
            return session.get(IndexPointer, 1)

    def share_snapshot(self, generation: Generation) -> None:
        if generation.snapshot_path.exists():
            self.blobs.share_file(snapshot_name(generation), generation.snapshot_path)

    def publish(self, generation: Generation) -> None:
        """Make ``generation`` the deployment's current one (its snapshot shared first, so no replica follows the
        pointer to a generation it cannot fetch)."""
        self.share_snapshot(generation)
        info = generation.model_info()
        for _ in range(2):
            try:
                with self.sessions.begin() as session:
                    row = session.get(IndexPointer, 1)
                    if row is None:
                        session.add(
                            IndexPointer(id=1, number=generation.number, model_info=info, updated_at=utcnow())
                        )
                    else:
                        row.number, row.model_info, row.updated_at = generation.number, info, utcnow()
                return
            except IntegrityError:  # another process inserted the first row at the same moment: update it
                continue

    def adopt_current(self) -> Generation | None:
        """Make the pointer's generation the local current one (fetching its snapshot if this disk lacks it);
        None when no pointer exists yet (then the local CURRENT is the truth, and is published by the caller)."""
        pointer = self.pointer()
        if pointer is None:
            return None
        local = self.generations.get(pointer.number)
        fresh = not local.fingerprint_path.exists() or local.fingerprint != pointer.model_info["fingerprint"]
        if fresh:
            local = self.generations.adopt(pointer.number, pointer.model_info)
        if not local.snapshot_path.exists() and self.blobs.fetch_file(
            snapshot_name(local), local.snapshot_path
        ):
            log.info("Fetched the snapshot of index generation %d from the shared store", local.number)
        current = self.generations.current()
        if current is None or current.number != local.number:
            self.generations.activate(local)
        return local
