"""The check path: decode → embed → search (brand filter) → score → audit row → answer."""
from __future__ import annotations

import uuid
from typing import Any

from service.blobs import sha256_hex
from service.db.models import Check
from service.embedding import ModelRunner
from service.index_sync import IndexSync
from service.registry import ReferenceRegistry
from service.scoring import Neighbour, Scorer
from service.uploads import ImageLimits, decode_upload


class Checker:
    def __init__(self, runner: ModelRunner, index_sync: IndexSync, registry: ReferenceRegistry, scorer: Scorer,
                 limits: ImageLimits):
        self.runner = runner
        self.index_sync = index_sync
        self.registry = registry
        self.scorer = scorer
        self.limits = limits

    def check(self, data: bytes, brand_hint: str | None, k: int, api_key_id: str | None) -> dict[str, Any]:
        image = decode_upload(data, self.limits)
        vector = self.runner.embed([image])
        similarities, ids = self.index_sync.search(vector, k, brand_hint)
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
            evidence_ids=[n.reference_id for n in neighbours], model_fingerprint=self.runner.info.fingerprint(),
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
            "model": {"spec": self.runner.info.spec, "fingerprint": self.runner.info.fingerprint(),
                      "weights_kind": self.runner.info.weights_kind},
            "scorer": self.scorer.name,
        }
