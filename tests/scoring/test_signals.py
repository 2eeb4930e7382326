"""Evidence signals (scoring.signals): the registry finds every signal module, each signal adds only its
own evidence, and a new signal's evidence reaches the check without touching the gathering code."""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

import scoring.signals
from index.pdq import PdqIndex, compute_pdq
from index.photos import packaged_photos
from index.vector_index import VectorIndex
from scoring.evidence import gather_evidence
from scoring.features import Neighbour
from scoring.signals import EVIDENCE_SIGNALS, EvidenceQuery, EvidenceSources

DIM = 8


def _sources(shared=None) -> tuple[EvidenceSources, np.ndarray, list]:
    """Three references of brand acme (two counterfeit, one authentic), hashed from three real photos."""
    photos = list(packaged_photos().values())[:3]
    hashes = [compute_pdq(photo) for photo in photos]
    pdq = PdqIndex()
    pdq.add([0, 1, 2], hashes)
    basis = np.eye(3, DIM, dtype=np.float32)
    vectors = VectorIndex.build(np.arange(3, dtype=np.int64), basis, ["acme"] * 3)
    labels = ["counterfeit", "counterfeit", "authentic"]
    facts = {i: SimpleNamespace(brand="acme", label=label, product=f"p{i}") for i, label in enumerate(labels)}
    sources = EvidenceSources(
        vectors, pdq, lambda ids: {i: facts[i] for i in ids if i in facts}, shared=shared
    )
    return sources, basis, hashes


def test_the_registry_holds_every_signal_module_in_order():
    modules = {m.name for m in pkgutil.iter_modules(scoring.signals.__path__)} - {"base"}
    assert len(EVIDENCE_SIGNALS) == len(modules)
    assert list(EVIDENCE_SIGNALS) == ["clip", "pdq", "keypoints", "shared_hashes"]
    assert all(signal.description for signal in EVIDENCE_SIGNALS.values())


def test_pdq_marks_the_clip_neighbour_it_matches_and_adds_a_hash_only_one():
    sources, basis, hashes = _sources()
    # The query looks like reference 0 to CLIP and is a hash copy of reference 2.
    query = EvidenceQuery(basis[0], hashes[2], k=1)
    clip_only = EVIDENCE_SIGNALS["clip"].gather(query, sources, [])
    assert [n.reference_id for n in clip_only][0] == 0 and all(n.pdq_distance is None for n in clip_only)
    merged = EVIDENCE_SIGNALS["pdq"].gather(query, sources, clip_only)
    by_id = {n.reference_id: n for n in merged}
    assert by_id[2].pdq_distance == 0 and by_id[2].label == "authentic"
    assert by_id[0].pdq_distance is None and by_id[0].clip_similarity > 0.99


def test_keypoints_are_not_verified_once_a_hash_matched():
    sources, basis, hashes = _sources()
    found = [Neighbour(0, "acme", "counterfeit", None, 0.9, 3)]
    query = EvidenceQuery(basis[0], hashes[0], k=1, keypoints=object())  # would fail if verification ran
    with_keypoints = EvidenceSources(
        sources.vectors, sources.hashes, sources.describe, reference_keypoints=None
    )
    assert EVIDENCE_SIGNALS["keypoints"].gather(query, with_keypoints, found) == found
    stored = EvidenceSources(
        sources.vectors, sources.hashes, sources.describe, reference_keypoints=lambda ids: 1 / 0
    )
    assert EVIDENCE_SIGNALS["keypoints"].gather(query, stored, found) == found


def test_shared_hashes_are_counterfeit_evidence_named_by_their_issuer_and_off_without_a_lookup():
    signal = SimpleNamespace(id=77, brand="acme", product="bag", issuer="peer.example")
    sources, basis, hashes = _sources(shared=lambda pdq, brand, distance: [(signal, 4)])
    query = EvidenceQuery(basis[1], hashes[1], k=3)
    found = EVIDENCE_SIGNALS["shared_hashes"].gather(query, sources, [])
    assert [(n.reference_id, n.label, n.pdq_distance, n.shared_by) for n in found] == [
        (77, "counterfeit", 4, "peer.example")
    ]
    off, _, _ = _sources()
    assert EVIDENCE_SIGNALS["shared_hashes"].gather(query, off, []) == []


def test_a_new_signal_is_gathered_without_changing_the_gathering(monkeypatch):
    @dataclass
    class Watermark:
        name = "watermark"
        order = 25
        description = "a test signal: a reference whose watermark the query carries"

        def gather(self, query, sources, found):
            return found + [Neighbour(2, "acme", "authentic", None, None, None, inliers=99, local_match=True)]

    monkeypatch.setitem(EVIDENCE_SIGNALS, "watermark", Watermark())
    sources, basis, hashes = _sources()
    neighbours = gather_evidence(sources, EvidenceQuery(basis[0], None, k=1))
    assert {n.reference_id for n in neighbours} == {0, 2}
    assert neighbours[0].reference_id == 0  # CLIP's identical match (similarity 1) is the strongest
    assert any(n.reference_id == 2 and n.local_match for n in neighbours)
