"""Candidate references for a query: CLIP neighbours and PDQ near-duplicates (scoring.signals weighs them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.pdq import DEFAULT_MAX_DISTANCE, PdqHash, PdqIndex
from index.regions import WHOLE, Region, best_per_reference
from index.vector_index import VectorIndex


@dataclass(frozen=True)
class ClipMatch:
    reference_id: int
    similarity: float
    region: str  # the query region whose similarity counts ("whole", "mirror", …)
    reference_region: int = 0  # which of the reference's vectors matched (0: its whole image; index.regions)


_BRAND_SLACK = 10  # PDQ matches looked at beyond k: other brands' may come first when a brand is given


def clip_matches(
    vectors: VectorIndex,
    vector: np.ndarray,
    k: int,
    brand: str | None = None,
    regions: tuple[Region, ...] = (WHOLE,),
) -> list[ClipMatch]:
    """The top-k CLIP neighbours (restricted to ``brand`` if given), most similar first.

    ``vector`` is one embedding, or one row per query region (``regions``, the whole image first):
    every region is searched in one FAISS call, and a reference counts with its best region."""
    queries = np.atleast_2d(vector)
    if len(queries) != len(regions):
        raise ValueError(f"{len(queries)} query vectors for {len(regions)} regions")
    similarities, ids, matched = vectors.search_regions(queries, k, brand)
    best = best_per_reference(similarities, ids, regions, matched)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
    return [
        ClipMatch(reference_id, similarity, region, number)
        for reference_id, (similarity, region, number) in ranked
    ]


def pdq_matches(
    vectors: VectorIndex,
    hashes: PdqIndex,
    pdq: PdqHash,
    k: int,
    brand: str | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> dict[int, int]:
    """Reference id → Hamming distance of the references whose hash matches ``pdq`` within ``max_distance``,
    restricted to ``brand`` if given: among the ``k`` nearest hashes and a few more (other brands' may come first)."""
    return {
        reference_id: distance
        for reference_id, distance in hashes.search(pdq, k=k + _BRAND_SLACK, max_distance=max_distance)
        if brand is None or vectors.brand_of(reference_id) == brand
    }
