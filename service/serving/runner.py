"""The model and index generation a service answers with, swappable as one unit.

Requests hold one :class:`Serving` for their whole life (``with slot.use() as serving``), so a
request never mixes one model's embedding with another generation's index. A reindex swaps the
slot after the new generation is complete; requests in flight finish on the old one, whose model
runner is stopped only when the last of them lets go (a request that had read the old serving but
not yet queued its image would otherwise wait forever on a stopped runner).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from sqlalchemy.orm import Session, sessionmaker

from index.embedder import Embedder
from index.generations import Generations
from index.images import DecodeBudget
from index.prepare import PrepareSpec
from index.regions import WHOLE, Region, query_regions
from scoring.profile import ModelProfile, ProfileStore
from service.core.blobs import BlobStore
from service.core.metrics import Metrics
from service.serving.embedding import BatchingModelRunner
from service.serving.generation_store import GenerationStore
from service.serving.index_sync import IndexSync
from service.serving.model_artefacts import DatabaseArtefacts
from service.serving.model_options import ModelOptions
from service.serving.uploads import ImageLimits
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Serving:
    runner: BatchingModelRunner
    index_sync: IndexSync
    limits: ImageLimits
    prepare_spec: PrepareSpec  # what CPU workers make from an upload for this model
    profile: ModelProfile | None  # None: COUNTERFEIT_MIN_MATCH_SIMILARITY overrides it
    min_match_similarity: float  # where a copy begins for this model (its profile, or the setting)
    min_distinctiveness: float = 0.0  # how far a CLIP match must stand out (scoring.distinctiveness)
    users: int = field(default=0, compare=False)  # requests holding it (ServingSlot.use)
    retired: bool = field(default=False, compare=False)  # replaced: stop the runner when users reaches 0

    def close(self) -> None:
        self.index_sync.snapshot()
        self.runner.close()


class ServingSlot:
    def __init__(self, serving: Serving):
        self.current = serving
        self.lock = threading.Lock()  # held only to read or replace ``current`` and count its users

    @contextmanager
    def use(self) -> Iterator[Serving]:
        """The current serving, kept running until the caller is done with it even if a swap retires it."""
        with self.lock:
            serving = self.current
            serving.users += 1
        try:
            yield serving
        finally:
            with self.lock:
                serving.users -= 1
                last = serving.retired and serving.users == 0
            if last:
                serving.runner.close(wait=False)  # on the caller's thread, maybe the event loop: no join

    def replace(self, new: Serving) -> Serving:
        """Make ``new`` current; the old one's runner stops now if idle, else when its last user is done."""
        with self.lock:
            old, self.current = self.current, new
            old.retired = True
            idle = old.users == 0
        if idle:
            old.runner.close()  # its queue drains first
        return old


def open_serving(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    metrics: Metrics,
    embedder: Embedder,
    budget: DecodeBudget | None = None,
    persist_snapshots: Callable[[], bool] = lambda: True,
) -> Serving:
    """Start the batching runner for ``embedder`` and open (or create) the current index generation for it."""
    options = ModelOptions.from_settings(settings)
    runner = BatchingModelRunner(
        embedder, options.batch_size, settings.batch_max_wait_ms / 1000, settings.embed_queue_size, metrics
    )
    limits = options.limits(embedder, budget)
    if embedder.info.is_test_only:
        log.warning(
            "Serving with RANDOM TEST-ONLY weights (%s): verdicts are meaningless.", embedder.info.spec
        )
    generations = Generations(settings.index_dir)
    index_sync = IndexSync(
        sessions,
        generations,
        embedder.info,
        blobs,
        runner.embed,
        limits,
        settings.snapshot_every_changes,
        persist_snapshots,
        settings.reference_regions,
        GenerationStore(sessions, generations, blobs).share_snapshot,
    )
    try:
        index_sync.open()
    except Exception:
        runner.close()
        raise
    profile = (
        None if settings.min_match_similarity is not None else model_profile(settings, sessions, embedder)
    )
    min_match, min_distinct = copy_bar(settings, profile)
    return Serving(
        runner,
        index_sync,
        limits,
        prepare_spec_for(embedder, limits, query_regions(settings.query_regions), settings.local_features),
        profile,
        min_match,
        min_distinct,
    )


def copy_bar(settings: Settings, profile: ModelProfile | None) -> tuple[float, float]:
    """(min match similarity, min distinctiveness): the settings where set, else the model's profile. A set
    COUNTERFEIT_MIN_MATCH_SIMILARITY replaces the profile, so distinctiveness is then off unless set too."""
    if profile is None:
        assert settings.min_match_similarity is not None
        return settings.min_match_similarity, settings.min_distinctiveness or 0.0
    distinct = (
        settings.min_distinctiveness
        if settings.min_distinctiveness is not None
        else profile.min_distinctiveness
    )
    return profile.min_match_similarity, distinct


def copy_bar_for(
    settings: Settings, sessions: sessionmaker[Session], embedder: Embedder
) -> tuple[float, float]:
    """Where a copy begins, (min match similarity, min distinctiveness): the settings, else the model's profile."""
    return copy_bar(
        settings,
        None if settings.min_match_similarity is not None else model_profile(settings, sessions, embedder),
    )


def model_profile(settings: Settings, sessions: sessionmaker[Session], embedder: Embedder) -> ModelProfile:
    """The model's stored or shipped profile, else derived now (once per model and deployment; seconds) and
    stored in the database, where every other replica finds it."""
    store = ProfileStore(DatabaseArtefacts(sessions))
    profile = store.get(embedder.info.fingerprint())
    if profile is None:
        from scoring.profile_fit import derive_profile

        log.info("No similarity profile for %s yet: deriving one from the offline images", embedder.info.spec)
        profile = store.save(derive_profile(embedder))
    log.info(
        "Model %s: a copy begins at similarity %.2f (its profile)",
        embedder.info.spec,
        profile.min_match_similarity,
    )
    return profile


def prepare_spec_for(
    embedder: Embedder, limits: ImageLimits, regions: tuple[Region, ...] = (WHOLE,), keypoints: bool = False
) -> PrepareSpec:
    """What CPU workers make from an upload: its PDQ hash and the model's pixels, of the whole image and of
    each query region, and its keypoints where local-feature verification is on. (Where the model decodes JPEGs on its device, the check path skips the workers and
    the model side hashes too; it embeds the whole image only.)"""
    return PrepareSpec(
        draft_size=limits.draft_size,
        pixels=embedder.pixel_config,
        want_pdq=True,
        max_bytes=limits.max_bytes,
        max_pixels=limits.max_pixels,
        regions=regions,
        keypoints="query" if keypoints else None,
    )
