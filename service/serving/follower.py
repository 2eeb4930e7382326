"""Each replica follows the deployment's current index generation: when a reindex, compaction or rollback
(on any disk) moves it, the replica loads that generation's model and snapshot and swaps its serving —
at a random moment within the jitter, so replicas do not all load at once, and not again for a while after
a failed attempt, so a broken generation does not starve requests with a model load every poll."""

from __future__ import annotations

import logging
import random
import time
from typing import Callable

from index.embedder import Embedder
from index.generations import Generations
from service.serving.generation_store import GenerationStore
from service.serving.model_options import ModelOptions
from service.serving.runner import Serving, ServingSlot
from service.settings import Settings

log = logging.getLogger(__name__)
SWAP_RETRY_SECONDS = 60


class GenerationFollower:
    def __init__(
        self,
        *,
        settings: Settings,
        store: GenerationStore,
        generations: Generations,
        slot: ServingSlot,
        open_serving: Callable[[Embedder], Serving],
    ):
        self.settings = settings
        self.store = store
        self.generations = generations
        self.slot = slot
        self.open_serving = open_serving  # the runtime's: a serving for an embedder on the current generation
        self._failed_swaps: dict[int, float] = {}  # generation -> when switching to it last failed
        self._swap_due: dict[int, float] = {}  # generation -> when this replica switches to it

    def follow(self) -> bool:
        """Swap to the deployment's current generation if it moved; True if swapped."""
        try:
            self.store.adopt_current()  # another disk's reindex: adopt it here (fetching its snapshot)
        except Exception:
            log.exception("Cannot adopt the deployment's current index generation yet")
        current = self.generations.current()
        serving = self.slot.current
        if current is None or current.number == serving.index_sync.generation.number:
            return False
        if not self._due(current.number):
            return False
        spec = current.model_info()["spec"]
        try:
            same_model = current.fingerprint == serving.runner.info.fingerprint()
            embedder = (
                serving.runner.embedder
                if same_model
                else ModelOptions.from_settings(self.settings).load(spec)
            )
            log.info("Index generation %d is current (model %s): swapping", current.number, spec)
            new = self.open_serving(embedder)
        except Exception:
            self._failed_swaps[current.number] = time.monotonic()
            log.exception(
                "Cannot switch to index generation %d; still serving generation %d (retry in %d s)",
                current.number,
                serving.index_sync.generation.number,
                SWAP_RETRY_SECONDS,
            )
            return False
        self.slot.replace(new)  # requests still holding the old serving finish on it
        return True

    def _due(self, generation: int) -> bool:
        failed_at = self._failed_swaps.get(generation)
        if failed_at is not None and time.monotonic() - failed_at < SWAP_RETRY_SECONDS:
            return False  # keep serving the old generation; loading a model every poll would starve requests
        # Replicas do not all load the new model and snapshot in the same second: each waits a random
        # part of COUNTERFEIT_GENERATION_SWAP_JITTER_SECONDS after it first sees the new generation.
        due = self._swap_due.setdefault(
            generation, time.monotonic() + random.uniform(0, self.settings.generation_swap_jitter_seconds)
        )
        return time.monotonic() >= due
