"""Wires settings into the running pieces; shared by the HTTP app and the CLI."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from index.generations import Generations
from index.models import ModelSpecError, ModelUnavailableError, load_embedder
from service.auth import ensure_key
from service.blobs import BlobStore
from service.checker import Checker
from service.db.models import ApiKey, Role
from service.db.session import make_engine, make_session_factory
from service.embedding import BatchingModelRunner
from service.index_sync import IndexModelMismatch, IndexSync
from service.metrics import Metrics
from service.registry import ReferenceRegistry
from service.scoring import MarginScorer
from service.settings import Settings
from service.uploads import ImageLimits

log = logging.getLogger(__name__)
# Misconfiguration the operator must fix; reported as one clear message, never a traceback.
STARTUP_ERRORS = (ModelSpecError, ModelUnavailableError, IndexModelMismatch)


class Runtime:
    def __init__(self, settings: Settings, persist_snapshots: bool = True):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.resolved_database_url)
        self.sessions = make_session_factory(self.engine)
        self.blobs = BlobStore(settings.blob_dir)
        self._bootstrap_keys()
        self._configure_torch()
        embedder = load_embedder(settings.model, device=settings.device, batch_size=settings.batch_size,
                                 cache_dir=str(settings.model_cache) if settings.model_cache else None)
        self.metrics = Metrics()
        self.runner = BatchingModelRunner(embedder, settings.batch_size, settings.batch_max_wait_ms / 1000,
                                          settings.embed_queue_size, self.metrics)
        self.pool = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        self.limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels, embedder.draft_size)
        if embedder.info.is_test_only:
            log.warning("Serving with RANDOM TEST-ONLY weights (%s): verdicts are meaningless.", settings.model)
        self.index_sync = IndexSync(self.sessions, Generations(settings.index_dir), embedder.info, self.blobs,
                                    self.runner.embed, self.limits, settings.snapshot_every_changes,
                                    persist_snapshots)
        self.index_sync.open()
        self.registry = ReferenceRegistry(self.sessions, self.blobs, self.runner, self.index_sync, self.limits)
        self.scorer = MarginScorer(settings.min_match_similarity, settings.score_temperature,
                                   settings.counterfeit_threshold, settings.authentic_threshold)
        self.checker = Checker(self.runner, self.index_sync, self.registry, self.scorer, self.limits, self.pool,
                               self.metrics)

    def _configure_torch(self) -> None:
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(self.settings.torch_threads)

    def _bootstrap_keys(self) -> None:
        with self.sessions() as session:
            if self.settings.bootstrap_admin_key:
                ensure_key(session, self.settings.bootstrap_admin_key, Role.admin, name="bootstrap")
            elif not session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.role == Role.admin)):
                log.warning("No admin API key exists yet. Create one with: counterfeit keys create --role admin "
                            "(or set COUNTERFEIT_BOOTSTRAP_ADMIN_KEY).")

    def close(self) -> None:
        self.index_sync.snapshot()
        self.runner.close()
        self.pool.shutdown(wait=True)
        self.engine.dispose()
