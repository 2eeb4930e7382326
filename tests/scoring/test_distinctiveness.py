"""A CLIP neighbour is copy evidence only where it stands out of the query's neighbourhood
(scoring.distinctiveness): a re-upload does, a new photo as near to other banks' photos does not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from index.pdq import PdqIndex, compute_pdq
from index.photos import packaged_photos
from index.vector_index import VectorIndex
from scoring.evidence import gather_evidence
from scoring.features import compute_features
from scoring.signals import EvidenceQuery, EvidenceSources

DIM = 64
MIN_MATCH = 0.65
MIN_DISTINCT = 0.1


def _bank(similarities: list[tuple[str, str, float]]):
    """References at exactly the given similarity to the query ``e0``: (brand, label, similarity) each."""
    vectors = np.zeros((len(similarities), DIM), np.float32)
    for i, (_, _, s) in enumerate(similarities):
        vectors[i, 0], vectors[i, i + 1] = s, np.sqrt(1 - s * s)  # each its own orthogonal remainder
    ids = np.arange(len(similarities), dtype=np.int64)
    index = VectorIndex.build(ids, vectors, [b for b, _, _ in similarities])
    facts = {
        i: SimpleNamespace(brand=b, label=label, product=None) for i, (b, label, _) in enumerate(similarities)
    }
    query = np.zeros(DIM, np.float32)
    query[0] = 1
    return index, query, lambda wanted: {i: facts[i] for i in wanted if i in facts}


def _evidence(similarities, k=10, min_distinct=MIN_DISTINCT, hashes=None, pdq=None):
    index, query, describe = _bank(similarities)
    sources = EvidenceSources(index, hashes or PdqIndex(), describe, 31, min_distinctiveness=min_distinct)
    neighbours = gather_evidence(sources, EvidenceQuery(query, pdq, k))
    return neighbours, compute_features(neighbours, None, MIN_MATCH)


OTHERS = [
    ("b", "authentic", 0.30),
    ("b", "counterfeit", 0.28),
    ("a", "authentic", 0.32),
    ("c", "authentic", 0.25),
    ("c", "counterfeit", 0.2),
]


def test_a_match_that_stands_out_is_copy_evidence_and_same_bank_duplicates_do_not_hide_it():
    neighbours, features = _evidence(
        [("a", "counterfeit", 0.80), ("a", "counterfeit", 0.79), ("a", "counterfeit", 0.78), *OTHERS]
    )
    best = neighbours[0]
    assert best.distinctiveness == pytest.approx(0.80 - np.mean([0.32, 0.30, 0.28, 0.25]), abs=1e-4)
    assert not best.crowded and best.clip_match(MIN_MATCH)
    assert features.has_evidence and features.values["best_counterfeit_sim"] == pytest.approx(0.80, abs=1e-4)
    assert features.values["log_n_counterfeit_above"] == pytest.approx(np.log1p(3))


def test_a_match_as_near_to_other_banks_photos_is_crowded_and_decides_nothing():
    crowded = [
        ("a", "counterfeit", 0.75),
        ("b", "authentic", 0.72),
        ("c", "authentic", 0.71),
        ("a", "authentic", 0.70),
        ("d", "counterfeit", 0.70),
        ("e", "authentic", 0.66),
    ]
    neighbours, features = _evidence(crowded)
    assert all(n.crowded for n in neighbours) and not any(n.clip_match(MIN_MATCH) for n in neighbours)
    assert not features.has_evidence and features.regime is None
    assert features.values["best_counterfeit_sim"] == features.values["best_authentic_sim"] == MIN_MATCH
    # Without the bar (a set COUNTERFEIT_MIN_MATCH_SIMILARITY and no distinctiveness) it was a copy match.
    _, before = _evidence(crowded, min_distinct=0.0)
    assert before.has_evidence and before.values["log_n_counterfeit_above"] > 0
    # The neighbourhood is read over DEPTH neighbours whatever k a caller asked for; k still bounds the list.
    top, features = _evidence(crowded, k=1)
    assert [n.reference_id for n in top] == [0] and top[0].crowded and not features.has_evidence


def test_a_pdq_match_is_never_crowded():
    photo = next(iter(packaged_photos().values()))
    pdq = compute_pdq(Image.fromarray(np.asarray(photo)))
    hashes = PdqIndex()
    hashes.add([0], [pdq])
    neighbours, features = _evidence(
        [
            ("a", "counterfeit", 0.75),
            ("b", "authentic", 0.72),
            ("c", "authentic", 0.71),
            ("d", "authentic", 0.70),
        ],
        hashes=hashes,
        pdq=pdq,
    )
    confirmed = next(n for n in neighbours if n.reference_id == 0)
    assert confirmed.pdq_distance == 0 and not confirmed.crowded and confirmed.distinctiveness < MIN_DISTINCT
    assert features.has_evidence and features.values["pdq_counterfeit_match"] == 1
