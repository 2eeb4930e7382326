"""Known-fake hashes other platforms shared (the exchange feed): counterfeit evidence named by its issuer."""

from __future__ import annotations

from scoring.features import Neighbour
from scoring.signals.base import EvidenceQuery, EvidenceSources


class SharedHashSignal:
    name = "shared_hashes"
    order = 40
    description = "PDQ hashes of confirmed fakes that trusted peers shared"

    def gather(
        self, query: EvidenceQuery, sources: EvidenceSources, found: list[Neighbour]
    ) -> list[Neighbour]:
        if sources.shared is None or query.pdq is None:
            return found
        return found + [
            Neighbour(
                signal.id,
                signal.brand,
                "counterfeit",
                signal.product,
                None,
                distance,
                shared_by=signal.issuer,
            )
            for signal, distance in sources.shared(query.pdq, query.brand_hint, sources.pdq_max_distance)
        ]


SIGNAL = SharedHashSignal()
