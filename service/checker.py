"""The check path: decode + PDQ → embed → CLIP search + PDQ lookup → score → audit row → answer.

``check_async`` is the request path: decoding, hashing and the database run on a bounded thread
pool, the model on the batching runner, so the event loop never decodes an image or runs the model.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import Executor
from typing import Any, Callable

import numpy as np
from PIL import Image

from index.matching import find_matches
from index.pdq import PdqHash, compute_pdq
from service.blobs import BlobStore, sha256_hex
from service.db.models import Check
from service.metrics import Metrics
from service.registry import ReferenceRegistry
from service.serving import Serving, ServingSlot
from service.signals import SharedSignalIndex
from service.uploads import ImageLimits, decode_upload
from training.features import Neighbour
from training.scoring import Scorer, Thresholds, score


def decode_and_hash(data: bytes, limits: ImageLimits) -> tuple[Image.Image, PdqHash]:
    image = decode_upload(data, limits)
    return image, compute_pdq(image)


class Checker:
    def __init__(self, slot: ServingSlot, registry: ReferenceRegistry, blobs: BlobStore,
                 scorer: Callable[[], Scorer], thresholds: Callable[[str | None], Thresholds],
                 keep_image: Callable[[str | None], bool], shared: SharedSignalIndex, min_match_similarity: float,
                 pdq_max_distance: int, pool: Executor, metrics: Metrics):
        self.slot = slot
        self.registry = registry
        self.blobs = blobs
        self.scorer = scorer  # a callable: the active calibration can change while serving
        self.thresholds = thresholds  # brand -> its policy's thresholds (or the global default)
        self.keep_image = keep_image  # brand -> whether its policy wants checked images kept
        self.shared = shared  # known-fake hashes other platforms shared
        self.min_match_similarity = min_match_similarity
        self.pdq_max_distance = pdq_max_distance
        self.pool = pool
        self.metrics = metrics

    def check(self, data: bytes, brand_hint: str | None, k: int, api_key_id: str | None) -> dict[str, Any]:
        """Blocking variant (CLI)."""
        serving = self.slot.current
        image, pdq = decode_and_hash(data, serving.limits)
        vector = serving.runner.embed([image])[0]
        return self.answer(serving, data, pdq, vector, brand_hint, k, api_key_id)

    async def check_async(self, data: bytes, brand_hint: str | None, k: int, api_key_id: str | None) -> dict[str, Any]:
        serving = self.slot.current  # one model and one index generation for the whole request
        loop = asyncio.get_running_loop()
        image, pdq = await loop.run_in_executor(self.pool, decode_and_hash, data, serving.limits)
        vector = await asyncio.wrap_future(serving.runner.submit(image))
        return await loop.run_in_executor(self.pool, self.answer, serving, data, pdq, vector, brand_hint, k, api_key_id)

    def answer(self, serving: Serving, data: bytes, pdq: PdqHash, vector: np.ndarray, brand_hint: str | None, k: int,
               api_key_id: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        sync = serving.index_sync
        matches = find_matches(sync.index, sync.pdq, vector, pdq, k, brand_hint, self.pdq_max_distance)
        self.metrics.search_seconds.observe(time.perf_counter() - started)
        references = self.registry.by_ids([m.reference_id for m in matches])
        # A reference deleted between search and lookup is simply not evidence any more.
        neighbours = [
            Neighbour(m.reference_id, references[m.reference_id].brand, references[m.reference_id].label.value,
                      references[m.reference_id].product,
                      round(m.clip_similarity, 6) if m.clip_similarity is not None else None, m.pdq_distance)
            for m in matches if m.reference_id in references
        ]
        neighbours += [Neighbour(signal.id, signal.brand, "counterfeit", signal.product, None, distance, shared_by=signal.issuer)
                       for signal, distance in self.shared.search(pdq, brand_hint, self.pdq_max_distance)]
        neighbours.sort(key=lambda n: -n.strength)
        scorer = self.scorer()
        first_guess = neighbours[0].brand if neighbours else brand_hint
        result = score(scorer, neighbours, brand_hint, self.min_match_similarity, self.thresholds(brand_hint or first_guess))
        digest = sha256_hex(data)
        if self.keep_image(result.brand):  # only where a confirming review may add it to the known-fake bank
            self.blobs.put(data, durable=False)
        check = Check(
            id="chk_" + uuid.uuid4().hex, api_key_id=api_key_id, brand_hint=brand_hint, brand=result.brand,
            image_sha256=digest, pdq_hash=pdq.hex, pdq_quality=pdq.quality, features=result.features.values,
            verdict=result.verdict, probability=result.probability,
            evidence_ids=[n.reference_id for n in neighbours if n.shared_by is None], model_fingerprint=serving.runner.info.fingerprint(),
            scorer=scorer.name,
        )
        with self.registry.sessions() as session:
            session.add(check)
            session.commit()
        return {
            "check_id": check.id,
            "verdict": result.verdict,
            "counterfeit_probability": result.probability,
            "brand": result.brand,
            "evidence": [self._evidence(n) for n in neighbours],
            "model": {"spec": serving.runner.info.spec, "fingerprint": serving.runner.info.fingerprint(),
                      "weights_kind": serving.runner.info.weights_kind},
            "scorer": scorer.name,
            "pdq": {"hash": pdq.hex, "quality": pdq.quality},
        }

    def _evidence(self, neighbour: Neighbour) -> dict[str, Any]:
        signals = [name for name, on in (("clip", (neighbour.clip_similarity or -1) >= self.min_match_similarity),
                                          ("pdq", neighbour.pdq_distance is not None),
                                          ("shared", neighbour.shared_by is not None)) if on]
        item = {"reference_id": None if neighbour.shared_by else neighbour.reference_id, "brand": neighbour.brand,
                "label": neighbour.label, "product": neighbour.product, "similarity": neighbour.clip_similarity,
                "clip_similarity": neighbour.clip_similarity, "pdq_distance": neighbour.pdq_distance, "signals": signals}
        if neighbour.shared_by:
            item |= {"shared_signal_id": neighbour.reference_id, "shared_by": neighbour.shared_by}
        return item
