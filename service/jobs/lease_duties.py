"""What the holder of the maintenance lease does for the whole deployment, once: compact an HNSW
generation that has collected too many tombstones, continue a scan whose process died, and collect
garbage (kept check images past retention, blobs nothing refers to) when due."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from index.vector_index import COMPACT_TOMBSTONE_RATIO
from service.core.blobs import BlobStore
from service.jobs.launcher import JobLauncher
from service.jobs.retention import collect_orphan_blobs, purge_check_images
from service.jobs.scans import ScanService
from service.jobs.store import JobStore
from service.serving.runner import ServingSlot
from service.settings import Settings

log = logging.getLogger(__name__)
COMPACTION_RETRY_SECONDS = 300


class LeaseHolderDuties:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        jobs: JobStore,
        launcher: JobLauncher,
        slot: ServingSlot,
        scans: ScanService,
    ):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.jobs = jobs
        self.launcher = launcher
        self.slot = slot
        self.scans = scans
        self._next_gc = time.monotonic() + settings.gc_interval_seconds
        self._next_compaction = 0.0

    def run(self) -> None:
        """One poll's duties, each only when due."""
        self._compact_if_due()
        # A scan whose process died (kill -9, a lost node) is continued here, from its unfinished listings.
        self.launcher.adopt("scan", self.scans.run)
        self._collect_garbage_if_due()

    def _compact_if_due(self) -> None:
        """An HNSW generation keeps deleted vectors as tombstones; past COMPACT_TOMBSTONE_RATIO the lease
        holder rebuilds it as a new generation (a reindex with the same model: stored embeddings, no
        re-embedding), off the request path. Every replica then swaps to it like after any reindex."""
        serving = self.slot.current
        index = serving.index_sync.index
        if index.tombstone_ratio <= COMPACT_TOMBSTONE_RATIO or time.monotonic() < self._next_compaction:
            return
        # One at a time; a failed one is retried later.
        self._next_compaction = time.monotonic() + COMPACTION_RETRY_SECONDS
        from service.jobs.reindex import Reindexer, ReindexParams, params_dict

        params = ReindexParams(serving.runner.info.spec, index_type="hnsw")
        reindexer = Reindexer(self.settings, self.sessions, self.blobs, self.jobs)
        job = self.launcher.launch(
            "reindex", params_dict(params), lambda job_id: reindexer.run(job_id, params)
        )
        log.info(
            "HNSW index has %.0f %% tombstones: compacting into a new generation (job %s)",
            100 * index.tombstone_ratio,
            job.id,
        )

    def _collect_garbage_if_due(self) -> None:
        if time.monotonic() < self._next_gc:
            return
        self._next_gc = time.monotonic() + self.settings.gc_interval_seconds
        removed = purge_check_images(
            self.sessions, self.blobs, timedelta(days=self.settings.check_image_retention_days)
        )
        orphans = collect_orphan_blobs(self.sessions, self.blobs)
        log.info("Retention GC removed %d kept check images and %d blobs nothing refers to", removed, orphans)
