"""One way to gather a query's evidence, for the service and the evaluation harness alike."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from index.local_features import (
    PDQ_CANDIDATE_DISTANCE,
    PDQ_CANDIDATES,
    TOP_K,
    Keypoints,
    ReferenceKeypoints,
    verify,
)
from index.matching import find_matches, pdq_matches
from index.pdq import PdqHash, PdqIndex
from index.regions import WHOLE, Region, region_name
from index.vector_index import VectorIndex
from scoring import distinctiveness
from scoring.features import Neighbour


class ReferenceFacts(Protocol):
    """What evidence needs of a reference (a stored ``Reference`` row, an evaluation item)."""

    brand: str
    label: Any  # "authentic" | "counterfeit", or an enum whose ``value`` is one of them
    product: str | None


class SharedSignal(Protocol):
    id: int
    brand: str
    product: str | None
    issuer: str


def gather_evidence(
    vectors: VectorIndex,
    hashes: PdqIndex,
    vector: np.ndarray,
    pdq: PdqHash | None,
    k: int,
    brand_hint: str | None,
    pdq_max_distance: int,
    describe: Callable[[Sequence[int]], Mapping[int, ReferenceFacts]],
    shared: Callable[[PdqHash, str | None, int], Iterable[tuple[SharedSignal, int]]] | None = None,
    regions: tuple[Region, ...] = (WHOLE,),
    reference_regions: tuple[Region, ...] = (WHOLE,),
    keypoints: Keypoints | None = None,
    reference_keypoints: Callable[[Sequence[int]], Mapping[int, ReferenceKeypoints]] | None = None,
    min_distinctiveness: float = 0.0,
) -> list[Neighbour]:
    """CLIP neighbours and PDQ near-duplicates (every dihedral variant of the query) of the references,
        plus known-fake hashes other platforms shared; strongest first. ``vector`` has one row per query
    region (``regions``; index.regions), or is the whole image's embedding; ``reference_regions`` names the
    references' indexed regions. ``describe`` looks references up by
        id: one deleted between search and lookup is simply not evidence any more. With the query's ``keypoints``,
        the top CLIP candidates are verified against ``reference_keypoints`` (:func:`verify_top`), and so are the
        references whose hash is near but no PDQ match (:func:`_verified_hash_neighbours`). Every CLIP neighbour gets
        its distinctiveness over the ``distinctiveness.DEPTH`` nearest, whatever ``k`` (:func:`_with_distinctiveness`);
        the k best CLIP neighbours are kept, with every PDQ match and verified copy."""
    matches = find_matches(vectors, hashes, vector, pdq, _depth(k), brand_hint, pdq_max_distance, regions)
    facts = describe([m.reference_id for m in matches])
    neighbours = _described(matches, facts, reference_regions)
    if (
        keypoints is not None
        and reference_keypoints is not None
        and not any(n.pdq_distance is not None for n in neighbours)
    ):
        # Verification is skipped when PDQ matched: a near-duplicate needs no second proof.
        neighbours = verify_top(neighbours, keypoints, reference_keypoints)
        neighbours = _verified_hash_neighbours(
            vectors, hashes, pdq, brand_hint, describe, keypoints, reference_keypoints, neighbours
        )
    neighbours = _with_distinctiveness(neighbours, min_distinctiveness, k)
    if shared is not None and pdq is not None:
        neighbours += _shared_neighbours(shared(pdq, brand_hint, pdq_max_distance))
    neighbours.sort(key=lambda n: -n.strength)
    return neighbours


def _described(
    matches, facts: Mapping[int, ReferenceFacts], reference_regions: tuple[Region, ...]
) -> list[Neighbour]:
    """Each match as evidence about the reference it found; one deleted since the search is no evidence."""
    return [
        Neighbour(
            m.reference_id,
            facts[m.reference_id].brand,
            _label(facts[m.reference_id].label),
            facts[m.reference_id].product,
            round(m.clip_similarity, 6) if m.clip_similarity is not None else None,
            m.pdq_distance,
            region=m.region,
            reference_region=region_name(reference_regions, m.reference_region)
            if m.region is not None
            else None,
        )
        for m in matches
        if m.reference_id in facts
    ]


def _shared_neighbours(found: Iterable[tuple[SharedSignal, int]]) -> list[Neighbour]:
    """Known-fake hashes other platforms shared, as counterfeit evidence named by their issuer."""
    return [
        Neighbour(
            signal.id, signal.brand, "counterfeit", signal.product, None, distance, shared_by=signal.issuer
        )
        for signal, distance in found
    ]


def _depth(k: int) -> int:
    """How many CLIP neighbours are searched for a caller's ``k``: distinctiveness reads the ``DEPTH`` nearest."""
    return max(k, distinctiveness.DEPTH)


def verification_skipped(
    vectors: VectorIndex,
    hashes: PdqIndex,
    pdq: PdqHash,
    k: int,
    brand_hint: str | None,
    pdq_max_distance: int,
) -> bool:
    """Whether :func:`gather_evidence` will skip keypoint verification for this hash (a PDQ match: a near-duplicate
    needs no second proof) — known before the model runs, so the caller need not detect the query's keypoints."""
    return bool(pdq_matches(vectors, hashes, pdq, _depth(k), brand_hint, pdq_max_distance))


def _with_distinctiveness(neighbours: list[Neighbour], min_distinctiveness: float, k: int) -> list[Neighbour]:
    """Each CLIP neighbour's distinctiveness against the other banks' neighbours (brand and label differ);
    one below ``min_distinctiveness`` is crowded unless PDQ or keypoints confirmed it. Then only the ``k`` best
    CLIP neighbours stay, plus the PDQ matches and verified copies beyond them."""
    clip = _clip_ranked(neighbours)
    kept = {n.reference_id for n in clip[:k]}
    out = []
    for n in neighbours:
        if n.clip_similarity is not None:
            others = [o.clip_similarity for o in clip if (o.brand, o.label) != (n.brand, n.label)]
            stand_out = round(n.clip_similarity - distinctiveness.background(others), 6)
            confirmed = n.pdq_distance is not None or n.local_match
            n = replace(
                n, distinctiveness=stand_out, crowded=stand_out < min_distinctiveness and not confirmed
            )
        if n.reference_id in kept or n.pdq_distance is not None or n.local_match or n.clip_similarity is None:
            out.append(n)
    return out


def _clip_ranked(neighbours: list[Neighbour]) -> list[Neighbour]:
    """The CLIP neighbours, most similar first."""
    return sorted((n for n in neighbours if n.clip_similarity is not None), key=lambda n: -n.clip_similarity)


def verify_top(
    neighbours: list[Neighbour],
    keypoints: Keypoints,
    reference_keypoints: Callable[[Sequence[int]], Mapping[int, ReferenceKeypoints]],
) -> list[Neighbour]:
    """``neighbours`` with the ``TOP_K`` CLIP candidates verified by local features (index.local_features):
    the cost stays bounded."""
    candidates = _clip_ranked(neighbours)[:TOP_K]
    checked = {n.reference_id: n for n in _verified(candidates, keypoints, reference_keypoints)}
    return [checked.get(n.reference_id, n) for n in neighbours]


def _verified(
    candidates: list[Neighbour],
    keypoints: Keypoints,
    reference_keypoints: Callable[[Sequence[int]], Mapping[int, ReferenceKeypoints]],
) -> list[Neighbour]:
    """Each candidate with stored keypoints, with its verification's inliers, coverage and verdict."""
    stored = reference_keypoints([n.reference_id for n in candidates])
    out = []
    for neighbour in candidates:
        if neighbour.reference_id in stored:
            result = verify(keypoints, stored[neighbour.reference_id])
            out.append(
                replace(
                    neighbour,
                    inliers=result.inliers,
                    inlier_coverage=result.coverage,
                    local_match=result.verified,
                )
            )
    return out


def _verified_hash_neighbours(
    vectors: VectorIndex,
    hashes: PdqIndex,
    pdq: PdqHash | None,
    brand_hint: str | None,
    describe: Callable[[Sequence[int]], Mapping[int, ReferenceFacts]],
    keypoints: Keypoints,
    reference_keypoints: Callable[[Sequence[int]], Mapping[int, ReferenceKeypoints]],
    neighbours: list[Neighbour],
) -> list[Neighbour]:
    """``neighbours`` plus the ``PDQ_CANDIDATES`` references with the nearest hashes within
    ``PDQ_CANDIDATE_DISTANCE`` that were not verified yet, verified by keypoints: a verified one replaces its
    CLIP neighbour (a lower one than the top candidates) or joins; an unverified one adds nothing (a near
    hash alone is no evidence)."""
    if pdq is None:
        return neighbours
    checked = {n.reference_id for n in neighbours if n.inliers is not None}
    near = [
        rid
        for rid, _ in hashes.search(pdq, PDQ_CANDIDATES, PDQ_CANDIDATE_DISTANCE)
        if rid not in checked and (brand_hint is None or vectors.brand_of(rid) == brand_hint)
    ]
    if not near:
        return neighbours
    by_id = {n.reference_id: n for n in neighbours}
    facts = describe([rid for rid in near if rid not in by_id])
    found = [
        by_id.get(rid)
        or Neighbour(rid, facts[rid].brand, _label(facts[rid].label), facts[rid].product, None, None)
        for rid in near
        if rid in by_id or rid in facts
    ]
    verified = {n.reference_id: n for n in _verified(found, keypoints, reference_keypoints) if n.local_match}
    return [verified.pop(n.reference_id, n) for n in neighbours] + list(verified.values())


def _label(label: Any) -> str:
    return getattr(label, "value", label)
