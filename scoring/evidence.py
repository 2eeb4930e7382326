"""One way to gather a query's evidence, for the service and the evaluation harness alike: every registered
evidence signal (scoring.signals) in order, then each CLIP neighbour's distinctiveness, strongest first."""

from __future__ import annotations

from dataclasses import replace

from scoring import distinctiveness
from scoring.features import Neighbour
from scoring.signals import EVIDENCE_SIGNALS, EvidenceQuery, EvidenceSources


def gather_evidence(sources: EvidenceSources, query: EvidenceQuery) -> list[Neighbour]:
    """The query's neighbours found by every signal (CLIP, PDQ, keypoints, shared hashes, …). Every CLIP
    neighbour gets its distinctiveness over the ``distinctiveness.DEPTH`` nearest, whatever ``k``
    (:func:`_with_distinctiveness`); the k best CLIP neighbours are kept, with all other evidence."""
    found: list[Neighbour] = []
    for signal in EVIDENCE_SIGNALS.values():
        found = signal.gather(query, sources, found)
    found = _with_distinctiveness(found, sources.min_distinctiveness, query.k)
    found.sort(key=lambda n: -n.strength)
    return found


def _with_distinctiveness(neighbours: list[Neighbour], min_distinctiveness: float, k: int) -> list[Neighbour]:
    """Each CLIP neighbour's distinctiveness against the other banks' neighbours (brand and label differ);
    one below ``min_distinctiveness`` is crowded unless PDQ or keypoints confirmed it. Then only the ``k`` best
    CLIP neighbours stay, plus the PDQ matches, verified copies and other signals' evidence beyond them."""
    clip = sorted((n for n in neighbours if n.clip_similarity is not None), key=lambda n: -n.clip_similarity)
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
