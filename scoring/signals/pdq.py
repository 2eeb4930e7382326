"""PDQ near-duplicates: references whose hash is within the configured Hamming distance of any dihedral
variant of the query's (a copy, re-encoded, resized, mirrored or rotated)."""

from __future__ import annotations

from dataclasses import replace

from index.matching import pdq_matches
from scoring.features import Neighbour
from scoring.signals.base import EvidenceQuery, EvidenceSources, described, neighbour


class PdqSignal:
    name = "pdq"
    order = 20
    description = "perceptual-hash near-duplicates (Hamming distance, every dihedral variant)"

    def gather(
        self, query: EvidenceQuery, sources: EvidenceSources, found: list[Neighbour]
    ) -> list[Neighbour]:
        if query.pdq is None:
            return found
        hits = pdq_matches(
            sources.vectors,
            sources.hashes,
            query.pdq,
            query.depth,
            query.brand_hint,
            sources.pdq_max_distance,
        )
        known = {n.reference_id for n in found}
        facts = described(sources, [rid for rid in hits if rid not in known])
        merged = [
            replace(n, pdq_distance=hits[n.reference_id]) if n.reference_id in hits else n for n in found
        ]
        merged += [
            neighbour(rid, facts[rid], pdq_distance=distance)
            for rid, distance in hits.items()
            if rid not in known and rid in facts
        ]
        # Best CLIP first, then hash-only matches nearest first: the order ties keep when sorted by strength.
        return sorted(
            merged, key=lambda n: (n.clip_similarity is None, -(n.clip_similarity or 0), n.pdq_distance or 0)
        )


SIGNAL = PdqSignal()
