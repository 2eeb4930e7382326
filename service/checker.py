"""The check path: decode → embed → search (brand filter) → score → audit row → answer.

``check_async`` is the request path: decoding and the database run on a bounded thread pool, the
model on the batching runner, so the event loop never decodes an image or runs the model.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import Executor
from typing import Any

import numpy as np

from service.blobs import sha256_hex
from service.db.models import Check
from service.metrics import Metrics
from service.registry import ReferenceRegistry
from service.scoring import Neighbour, Scorer
from service.serving import Serving, ServingSlot
from service.uploads import decode_upload


class Checker:
    def __init__(self, slot: ServingSlot, registry: ReferenceRegistry, scorer: Scorer, pool: Executor, metrics: Metrics):
        self.slot = slot
        self.registry = registry
        self.scorer = scorer
        self.pool = pool
        self.metrics = metrics

    def check(self, data: bytes, brand_hint: str | None, k: int, api_key_id: str | None) -> dict[str, Any]:
        """Blocking variant (CLI)."""
        serving = self.slot.current
        vector = serving.runner.embed([decode_upload(data, serving.limits)])[0]
        return self.answer(serving, data, vector, brand_hint, k, api_key_id)

    async def check_async(self, data: bytes, brand_hint: str | None, k: int, api_key_id: str | None) -> dict[str, Any]:
        serving = self.slot.current  # one model and one index generation for the whole request
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self.pool, decode_upload, data, serving.limits)
        vector = await asyncio.wrap_future(serving.runner.submit(image))
        return await loop.run_in_executor(self.pool, self.answer, serving, data, vector, brand_hint, k, api_key_id)

    def answer(self, serving: Serving, data: bytes, vector: np.ndarray, brand_hint: str | None, k: int,
               api_key_id: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        similarities, ids = serving.index_sync.search(vector[None, :], k, brand_hint)
        self.metrics.search_seconds.observe(time.perf_counter() - started)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], similarities[0]) if i >= 0]
        references = self.registry.by_ids([i for i, _ in hits])
        # A reference deleted between search and lookup is simply not evidence any more.
        neighbours = [
            Neighbour(rid, references[rid].brand, references[rid].label.value, references[rid].product, round(sim, 6))
            for rid, sim in hits if rid in references
        ]
        score = self.scorer.score(neighbours, brand_hint)
        check = Check(
            id="chk_" + uuid.uuid4().hex, api_key_id=api_key_id, brand_hint=brand_hint, brand=score.brand,
            image_sha256=sha256_hex(data), verdict=score.verdict, probability=score.probability,
            evidence_ids=[n.reference_id for n in neighbours], model_fingerprint=serving.runner.info.fingerprint(),
            scorer=self.scorer.name,
        )
        with self.registry.sessions() as session:
            session.add(check)
            session.commit()
        return {
            "check_id": check.id,
            "verdict": score.verdict,
            "counterfeit_probability": score.probability,
            "brand": score.brand,
            "evidence": [
                {"reference_id": n.reference_id, "brand": n.brand, "label": n.label, "product": n.product,
                 "similarity": n.similarity}
                for n in neighbours
            ],
            "model": {"spec": serving.runner.info.spec, "fingerprint": serving.runner.info.fingerprint(),
                      "weights_kind": serving.runner.info.weights_kind},
            "scorer": self.scorer.name,
        }
