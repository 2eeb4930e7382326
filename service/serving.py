"""The model and index generation a service answers with, swappable as one unit.

Requests read ``slot.current`` once and use that :class:`Serving` throughout, so a request never
mixes one model's embedding with another generation's index. A reindex swaps the slot after the
new generation is complete; requests in flight finish on the old one.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from index.embedder import Embedder
from index.generations import Generations
from index.images import DecodeBudget
from index.prepare import PrepareSpec
from service.blobs import BlobStore
from service.embedding import BatchingModelRunner
from service.index_sync import IndexSync
from service.metrics import Metrics
from service.model_options import ModelOptions
from service.settings import Settings
from service.uploads import ImageLimits

log = logging.getLogger(__name__)


@dataclass
class Serving:
    runner: BatchingModelRunner
    index_sync: IndexSync
    limits: ImageLimits
    prepare_spec: PrepareSpec  # what CPU workers make from an upload for this model

    def close(self) -> None:
        self.index_sync.snapshot()
        self.runner.close()


class ServingSlot:
    def __init__(self, serving: Serving):
        self.current = serving
        self.lock = threading.Lock()  # held only while replacing ``current``


def open_serving(settings: Settings, sessions: sessionmaker[Session], blobs: BlobStore, metrics: Metrics,
                 embedder: Embedder, budget: DecodeBudget | None = None,
                 persist_snapshots: Callable[[], bool] = lambda: True) -> Serving:
    """Start the batching runner for ``embedder`` and open (or create) the current index generation for it."""
    options = ModelOptions.from_settings(settings)
    runner = BatchingModelRunner(embedder, options.batch_size, settings.batch_max_wait_ms / 1000,
                                 settings.embed_queue_size, metrics)
    limits = options.limits(embedder, budget)
    if embedder.info.is_test_only:
        log.warning("Serving with RANDOM TEST-ONLY weights (%s): verdicts are meaningless.", embedder.info.spec)
    index_sync = IndexSync(sessions, Generations(settings.index_dir), embedder.info, blobs, runner.embed, limits,
                           settings.snapshot_every_changes, persist_snapshots)
    try:
        index_sync.open()
    except Exception:
        runner.close()
        raise
    return Serving(runner, index_sync, limits, prepare_spec_for(embedder, limits))


def prepare_spec_for(embedder: Embedder, limits: ImageLimits) -> PrepareSpec:
    """What CPU workers make from an upload: its PDQ hash and the model's pixels. (Where the model decodes
    JPEGs on its device, the check path skips the workers and the model side hashes too.)"""
    return PrepareSpec(draft_size=limits.draft_size, pixels=embedder.pixel_config, want_pdq=True,
                       max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
