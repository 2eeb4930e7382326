"""Keypoint verification (index.local_features): the top CLIP candidates, and the references whose hash is
near but no PDQ match, checked for a geometric copy of the query. Skipped when PDQ matched: a near-duplicate
needs no second proof."""

from __future__ import annotations

from dataclasses import replace

from index.local_features import PDQ_CANDIDATE_DISTANCE, PDQ_CANDIDATES, TOP_K, Keypoints, verify
from index.matching import pdq_matches
from index.pdq import PdqHash
from scoring.features import Neighbour
from scoring.signals.base import (
    EvidenceQuery,
    EvidenceSources,
    KeypointsOf,
    described,
    neighbour,
    search_depth,
)


class KeypointSignal:
    name = "keypoints"
    order = 30
    description = "local features verified by a homography (inliers and their coverage)"

    def gather(
        self, query: EvidenceQuery, sources: EvidenceSources, found: list[Neighbour]
    ) -> list[Neighbour]:
        stored = sources.reference_keypoints
        if query.keypoints is None or stored is None or any(n.pdq_distance is not None for n in found):
            return found
        found = verify_top(found, query.keypoints, stored)
        return _verified_hash_neighbours(query, sources, stored, found)


def verification_skipped(sources: EvidenceSources, pdq: PdqHash, k: int, brand_hint: str | None) -> bool:
    """Whether :class:`KeypointSignal` will skip verification for this hash (a PDQ match) — known before the
    model runs, so the caller need not detect the query's keypoints."""
    return bool(
        pdq_matches(
            sources.vectors, sources.hashes, pdq, search_depth(k), brand_hint, sources.pdq_max_distance
        )
    )


def verify_top(neighbours: list[Neighbour], keypoints: Keypoints, stored: KeypointsOf) -> list[Neighbour]:
    """``neighbours`` with the ``TOP_K`` CLIP candidates verified: the cost stays bounded."""
    candidates = sorted(
        (n for n in neighbours if n.clip_similarity is not None), key=lambda n: -n.clip_similarity
    )[:TOP_K]
    checked = {n.reference_id: n for n in _verified(candidates, keypoints, stored)}
    return [checked.get(n.reference_id, n) for n in neighbours]


def _verified(candidates: list[Neighbour], keypoints: Keypoints, stored: KeypointsOf) -> list[Neighbour]:
    """Each candidate with stored keypoints, with its verification's inliers, coverage and verdict."""
    points = stored([n.reference_id for n in candidates])
    out = []
    for candidate in candidates:
        if candidate.reference_id in points:
            result = verify(keypoints, points[candidate.reference_id])
            out.append(
                replace(
                    candidate,
                    inliers=result.inliers,
                    inlier_coverage=result.coverage,
                    local_match=result.verified,
                )
            )
    return out


def _verified_hash_neighbours(
    query: EvidenceQuery, sources: EvidenceSources, stored: KeypointsOf, neighbours: list[Neighbour]
) -> list[Neighbour]:
    """``neighbours`` plus the ``PDQ_CANDIDATES`` references with the nearest hashes within
    ``PDQ_CANDIDATE_DISTANCE`` that were not verified yet, verified by keypoints: a verified one replaces its
    CLIP neighbour (a lower one than the top candidates) or joins; an unverified one adds nothing (a near
    hash alone is no evidence)."""
    if query.pdq is None or query.keypoints is None:
        return neighbours
    checked = {n.reference_id for n in neighbours if n.inliers is not None}
    near = [
        rid
        for rid, _ in sources.hashes.search(query.pdq, PDQ_CANDIDATES, PDQ_CANDIDATE_DISTANCE)
        if rid not in checked
        and (query.brand_hint is None or sources.vectors.brand_of(rid) == query.brand_hint)
    ]
    if not near:
        return neighbours
    by_id = {n.reference_id: n for n in neighbours}
    facts = described(sources, [rid for rid in near if rid not in by_id])
    found = [by_id.get(rid) or neighbour(rid, facts[rid]) for rid in near if rid in by_id or rid in facts]
    verified = {n.reference_id: n for n in _verified(found, query.keypoints, stored) if n.local_match}
    return [verified.pop(n.reference_id, n) for n in neighbours] + list(verified.values())


SIGNAL = KeypointSignal()
