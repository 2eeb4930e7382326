"""Evaluation harness: run the matching and scoring pipeline on an evaluation set and report.

For each scorer: counterfeit-score ROC-AUC, precision/recall of each verdict, expected calibration
error (over queries whose source is in a bank), and the share of distractor queries (source in
no bank) that come back ``inconclusive``. Scorer-independent: copy-match µAP over all
query→reference candidates. Uses the same ``index`` pieces and scorers as the service.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np

from index.embedder import Embedder
from index.images import decode_image, pdq_source
from index.pdq import DEFAULT_MAX_DISTANCE, PdqIndex, compute_pdq
from index.vector_index import VectorIndex
from scoring.evidence import gather_evidence
from scoring.features import Features, Neighbour, compute_features
from scoring.scorers import INCONCLUSIVE, LIKELY_AUTHENTIC, LIKELY_COUNTERFEIT, Scorer, Thresholds, score
from training.dataset import Item
from training.metrics import expected_calibration_error, micro_average_precision

BIG = 1 << 40


@dataclass
class QueryOutcome:
    item: Item
    neighbours: list[Neighbour]
    features: Features
    top_similarity: float
    matches: list[tuple[str, float]]  # (reference source name, strength)
    results: dict[str, tuple[float, str]] = field(default_factory=dict)  # scorer -> (probability, verdict)


def _embed_all(embedder: Embedder, items: Sequence[Item], batch: int = 32):
    vectors, hashes = [], []
    for start in range(0, len(items), batch):
        images = [decode_image(i.path.read_bytes(), BIG, BIG, draft_size=embedder.draft_size) for i in items[start:start + batch]]
        vectors.append(embedder.embed(images))
        hashes += [compute_pdq(pdq_source(image)) for image in images]
    return (np.concatenate(vectors) if vectors else np.zeros((0, embedder.dimension), np.float32)), hashes


def run_pipeline(items: Sequence[Item], embedder: Embedder, min_match_similarity: float, k: int = 10) -> list[QueryOutcome]:
    references = [i for i in items if i.role == "reference"]
    queries = [i for i in items if i.role == "query"]
    ref_vectors, ref_hashes = _embed_all(embedder, references)
    ids = np.arange(len(references), dtype=np.int64)
    vectors = VectorIndex.build(ids, ref_vectors, [r.brand for r in references])
    hashes = PdqIndex()
    hashes.add(ids.tolist(), ref_hashes)
    query_vectors, query_hashes = _embed_all(embedder, queries)
    facts = [SimpleNamespace(brand=r.brand, label=r.label, product=None) for r in references]

    def describe(ids):
        return {i: facts[i] for i in ids}

    outcomes = []
    for item, vector, pdq in zip(queries, query_vectors, query_hashes):
        neighbours = gather_evidence(vectors, hashes, vector, pdq, k, None, DEFAULT_MAX_DISTANCE, describe)
        top = max((n.clip_similarity for n in neighbours if n.clip_similarity is not None), default=0.0)
        outcomes.append(QueryOutcome(item, neighbours, compute_features(neighbours, None, min_match_similarity), top,
                                     [(references[n.reference_id].source, n.strength) for n in neighbours]))
    return outcomes


def apply_scorers(outcomes: Sequence[QueryOutcome], scorers: Mapping[str, Scorer], thresholds: Mapping[str, Thresholds],
                  min_match_similarity: float) -> None:
    for outcome in outcomes:
        for name, scorer in scorers.items():
            result = score(scorer, outcome.neighbours, None, min_match_similarity, thresholds[name])
            outcome.results[name] = (result.probability, result.verdict)


def summarise(outcomes: Sequence[QueryOutcome], scorer_names: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    in_bank = [o for o in outcomes if o.item.label != "distractor"]
    distractors = [o for o in outcomes if o.item.label == "distractor"]
    truth = np.array([o.item.label == "counterfeit" for o in in_bank], dtype=int)
    pairs = [(strength, source == o.item.source) for o in in_bank for source, strength in o.matches]
    pairs += [(strength, False) for o in distractors for _, strength in o.matches]
    report: dict[str, Any] = {
        "queries": len(outcomes), "in_bank_queries": len(in_bank), "distractor_queries": len(distractors),
        "copy_match_micro_ap": round(micro_average_precision(pairs, len(in_bank)), 4),
        "scorers": {},
    }
    for name in scorer_names:
        probabilities = np.array([o.results[name][0] for o in in_bank])
        verdicts = [o.results[name][1] for o in in_bank]
        per_verdict = {}
        for verdict, label in ((LIKELY_COUNTERFEIT, 1), (LIKELY_AUTHENTIC, 0)):
            called = np.array([v == verdict for v in verdicts])
            actual = truth == label
            per_verdict[verdict] = {
                "precision": round(float(actual[called].mean()), 4) if called.any() else None,
                "recall": round(float(called[actual].mean()), 4) if actual.any() else None,
                "count": int(called.sum()),
            }
        report["scorers"][name] = {
            "roc_auc": round(float(roc_auc_score(truth, probabilities)), 4) if len(set(truth.tolist())) == 2 else None,
            "ece": round(expected_calibration_error(probabilities, truth), 4),
            "verdicts": per_verdict,
            "inconclusive_rate_in_bank": round(float(np.mean([v == INCONCLUSIVE for v in verdicts])), 4),
            "distractor_inconclusive_rate": round(float(np.mean([o.results[name][1] == INCONCLUSIVE for o in distractors])), 4)
            if distractors else None,
        }
    return report


def evaluate_set(items: Sequence[Item], embedder: Embedder, min_match_similarity: float, temperature: float,
                 default_thresholds: Thresholds, calibration=None) -> tuple[dict[str, Any], list[QueryOutcome], list[str]]:
    """Run every scorer we ship on the set: CLIP only, CLIP + PDQ, and the calibration if given."""
    from scoring.scorers import MarginScorer

    scorers: dict[str, Scorer] = {"clip_only": MarginScorer(min_match_similarity, temperature, use_pdq=False),
                                  "clip_pdq": MarginScorer(min_match_similarity, temperature)}
    thresholds = {"clip_only": default_thresholds, "clip_pdq": default_thresholds}
    if calibration is not None:
        scorers["calibrated"] = calibration.scorer()
        thresholds["calibrated"] = Thresholds(**calibration.thresholds)
    outcomes = run_pipeline(items, embedder, min_match_similarity)
    apply_scorers(outcomes, scorers, thresholds, min_match_similarity)
    report = summarise(outcomes, list(scorers))
    report["model"] = embedder.info.spec
    report["min_match_similarity"] = min_match_similarity
    if calibration is not None:
        report["calibration"] = calibration.version
    return report, outcomes, list(scorers)


def training_examples(outcomes: Sequence[QueryOutcome]) -> tuple[list[list[float]], list[int]]:
    """Features and truth of in-bank queries that had evidence (the only ones a scorer decides on)."""
    usable = [o for o in outcomes if o.item.label != "distractor" and o.features.has_evidence]
    return [o.features.vector() for o in usable], [int(o.item.label == "counterfeit") for o in usable]
