"""Candidate references for a query from both signals: CLIP neighbours and PDQ near-duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.pdq import DEFAULT_MAX_DISTANCE, PdqHash, PdqIndex
from index.regions import WHOLE, Region, best_per_reference
from index.vector_index import VectorIndex


@dataclass(frozen=True)
class Match:
    reference_id: int
    clip_similarity: float | None  # None: found by PDQ only, outside the CLIP top-k
    pdq_distance: int | None  # None: no PDQ match within the threshold
    region: str | None = None  # the query region whose similarity counts ("whole", "mirror", …)
    reference_region: int = 0  # which of the reference's vectors matched (0: its whole image; index.regions)


_BRAND_SLACK = 10  # PDQ matches looked at beyond k: other brands' may come first when a brand is given


def find_matches(
    vectors: VectorIndex,
    hashes: PdqIndex,
    vector: np.ndarray,
    pdq: PdqHash | None,
    k: int,
    brand: str | None = None,
    pdq_max_distance: int = DEFAULT_MAX_DISTANCE,
    regions: tuple[Region, ...] = (WHOLE,),
) -> list[Match]:
    """Top-k CLIP neighbours merged with PDQ matches (restricted to ``brand`` if given), best CLIP first.

    ``vector`` is one embedding, or one row per query region (``regions``, the whole image first):
    every region is searched in one FAISS call, and a reference counts with its best region."""
    queries = np.atleast_2d(vector)
    if len(queries) != len(regions):
        raise ValueError(f"{len(queries)} query vectors for {len(regions)} regions")
    similarities, ids, matched = vectors.search_regions(queries, k, brand)
    best = best_per_reference(similarities, ids, regions, matched)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
    clip = {reference_id: value for reference_id, (value, _, _) in ranked}
    region_of = {reference_id: (region, number) for reference_id, (_, region, number) in ranked}
    pdq_hits = pdq_matches(vectors, hashes, pdq, k, brand, pdq_max_distance) if pdq is not None else {}
    matches = [
        Match(rid, clip.get(rid), pdq_hits.get(rid), *region_of.get(rid, (None, 0)))
        for rid in clip.keys() | pdq_hits.keys()
    ]
    return sorted(
        matches, key=lambda m: (m.clip_similarity is None, -(m.clip_similarity or 0), m.pdq_distance or 0)
    )


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
