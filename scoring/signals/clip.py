"""CLIP neighbours: the references most similar to any query region, each counted with its best region."""

from __future__ import annotations

from index.matching import clip_matches
from index.regions import region_name
from scoring.features import Neighbour
from scoring.signals.base import EvidenceQuery, EvidenceSources, described, neighbour


class ClipSignal:
    name = "clip"
    order = 10
    description = "embedding neighbours (centred cosine), per query region"

    def gather(
        self, query: EvidenceQuery, sources: EvidenceSources, found: list[Neighbour]
    ) -> list[Neighbour]:
        matches = clip_matches(sources.vectors, query.vector, query.depth, query.brand_hint, query.regions)
        facts = described(sources, [m.reference_id for m in matches])
        return found + [
            neighbour(
                m.reference_id,
                facts[m.reference_id],
                clip_similarity=round(m.similarity, 6),
                region=m.region,
                reference_region=region_name(sources.reference_regions, m.reference_region),
            )
            for m in matches
            if m.reference_id in facts
        ]


SIGNAL = ClipSignal()
