"""Evaluation harness: run the matching and scoring pipeline on an evaluation set and report.

For each scorer of the ablation (CLIP only, + PDQ, + local-feature verification, + the brands'
look-alike classifiers): 3-way
verdict accuracy, precision and coverage of decided verdicts, counterfeit-score ROC-AUC, precision/recall of each verdict, expected calibration
error (over queries whose source is in a bank), and the share of distractor queries (source in
no bank) that come back ``inconclusive``. Scorer-independent: copy-match µAP over all
query→reference candidates, top-1 per transform family, and which regime decided. Uses the same
``index`` pieces, evidence gathering, classifiers and scorers as the service.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from index.embedder import Embedder
from index.images import at_least, decode_image, pdq_source
from index.local_features import query_keypoints, reference_keypoints
from index.pdq import DEFAULT_MAX_DISTANCE, PdqIndex, compute_pdq
from index.regions import WHOLE, Region
from index.vector_index import VectorIndex
from scoring.evidence import gather_evidence
from scoring.features import Features, Neighbour, compute_features
from scoring.listing import AGGREGATIONS, LOOKALIKE_POOLING, PhotoOutcome, by_evidence, score_listing
from scoring.lookalike import BrandProbe, LookAlike, ProbeSet, look_alike
from scoring.lookalike_fit import fit_brand_probe, probe_negatives
from scoring.scorers import ABSTENTIONS, LIKELY_AUTHENTIC, LIKELY_COUNTERFEIT, Scorer, Thresholds, score
from scoring.signals import EvidenceQuery, EvidenceSources
from training.manifest import Item
from training.metrics import expected_calibration_error, micro_average_precision

BIG = 1 << 40


@dataclass
class QueryOutcome:
    item: Item
    neighbours: list[Neighbour]
    features: Features
    top_similarity: float
    matches: list[tuple[str, float]]  # (reference source name, strength)
    lookalike: LookAlike | None = None  # what the brand's classifier said, where one applied
    results: dict[str, tuple[float, str]] = field(default_factory=dict)  # scorer -> (probability, verdict)

    @property
    def top_source(self) -> str | None:
        return self.matches[0][0] if self.matches else None


def _embed_all(
    embedder: Embedder,
    items: Sequence[Item],
    batch: int = 32,
    regions: tuple[Region, ...] = (WHOLE,),
    keypoints: Callable[[Image.Image], Any] | None = None,
):
    """Per item its vectors (one row per region, as the check path cuts them), PDQ hash and, with ``keypoints``
    (index.local_features), its keypoints."""
    vectors, hashes, points = [], [], []
    for start in range(0, len(items), batch):
        images = [
            decode_image(i.path.read_bytes(), BIG, BIG, draft_size=at_least(embedder.draft_size))
            for i in items[start : start + batch]
        ]
        crops = [region.crop(image) for image in images for region in regions]
        vectors.append(embedder.embed(crops).reshape(len(images), len(regions), -1))
        hashes += [compute_pdq(pdq_source(image)) for image in images]
        points += [keypoints(image) if keypoints is not None else None for image in images]
    return (
        (np.concatenate(vectors) if vectors else np.zeros((0, len(regions), embedder.dimension), np.float32)),
        hashes,
        points,
    )


def fit_probes(
    references: Sequence[Item],
    vectors: np.ndarray,
    fingerprint: str,
    background: np.ndarray,
    min_per_bank: int = 8,
    min_cv_auc: float = 0.8,
    min_precision: float = 0.9,
) -> ProbeSet:
    """Each brand's look-alike classifier, fitted as the service's job fits it (scoring.lookalike_fit):
    ``vectors`` are the references' stored views (n × views × d), ``background`` the model's background
    images, negatives beside the other brands' references."""
    probes = {}
    views = vectors.shape[1]
    for brand in sorted({r.brand for r in references if r.brand}):
        rows = [i for i, r in enumerate(references) if r.brand == brand]
        others = [i for i, r in enumerate(references) if r.brand != brand]
        labels = np.repeat(np.array([references[i].label == "counterfeit" for i in rows], int), views)
        negatives = probe_negatives(vectors[others].reshape(-1, vectors.shape[-1]), background)
        fitted = fit_brand_probe(
            brand,
            vectors[rows].reshape(-1, vectors.shape[-1]),
            labels,
            fingerprint,
            groups=np.repeat(np.array(rows), views),
            negatives=negatives,
            min_per_bank=min_per_bank,
            min_cv_auc=min_cv_auc,
            min_precision=min_precision,
        )
        if isinstance(fitted, BrandProbe):
            probes[brand] = fitted
    return ProbeSet(probes)


def run_pipeline(
    items: Sequence[Item],
    embedder: Embedder,
    min_match_similarity: float,
    k: int = 10,
    lookalike: bool = True,
    regions: tuple[Region, ...] = (WHOLE,),
    reference_regions: tuple[Region, ...] = (WHOLE,),
    local_features: bool = True,
    min_distinctiveness: float = 0.0,
    lookalike_min_cv_auc: float = 0.8,
    lookalike_min_precision: float = 0.9,
) -> list[QueryOutcome]:
    """``regions``: the query regions searched, ``reference_regions`` those indexed with each reference
    (index.regions; the service's ``COUNTERFEIT_QUERY_REGIONS`` and ``COUNTERFEIT_REFERENCE_REGIONS``);
    ``local_features``: verify the top candidates by keypoints (``COUNTERFEIT_LOCAL_FEATURES``);
    ``min_distinctiveness``: the model's (scoring.distinctiveness), as the service reads it from the profile."""
    references = [i for i in items if i.role == "reference"]
    queries = [i for i in items if i.role == "query"]
    vectors, hashes, ref_all, ref_points = _reference_bank(
        embedder, references, reference_regions, local_features
    )
    query_vectors, query_hashes, query_points = _embed_all(
        embedder, queries, regions=regions, keypoints=query_keypoints if local_features else None
    )
    background = getattr(embedder, "background_vectors", np.zeros((0, ref_all.shape[-1]), np.float32))
    probes = (
        fit_probes(
            references,
            ref_all,
            embedder.info.fingerprint(),
            background,
            min_cv_auc=lookalike_min_cv_auc,
            min_precision=lookalike_min_precision,
        )
        if lookalike
        else {}
    )
    facts = [SimpleNamespace(brand=r.brand, label=r.label, product=None) for r in references]
    sources = EvidenceSources(
        vectors,
        hashes,
        lambda ids: {i: facts[i] for i in ids},
        DEFAULT_MAX_DISTANCE,
        reference_regions,
        (lambda ids: {i: ref_points[i] for i in ids}) if local_features else None,
        min_distinctiveness=min_distinctiveness,
    )

    return [
        _outcome(
            item,
            sources,
            EvidenceQuery(vector, pdq, k, None, regions, points),
            probes,
            references,
            min_match_similarity,
        )
        for item, vector, pdq, points in zip(queries, query_vectors, query_hashes, query_points)
    ]


def _outcome(
    item: Item,
    sources: EvidenceSources,
    query: EvidenceQuery,
    probes: Mapping[str, BrandProbe],
    references: Sequence[Item],
    min_match_similarity: float,
) -> QueryOutcome:
    """One query's evidence, features and look-alike verdict, as the service would gather them."""
    neighbours = gather_evidence(sources, query)
    top = max((n.clip_similarity for n in neighbours if n.clip_similarity is not None), default=0.0)
    applied = look_alike(probes, query.vector, None)
    return QueryOutcome(
        item,
        neighbours,
        compute_features(neighbours, None, min_match_similarity, applied),
        top,
        [(references[n.reference_id].source, n.strength) for n in neighbours],
        applied,
    )


def _reference_bank(embedder: Embedder, references: Sequence[Item], reference_regions, local_features: bool):
    """The references as the service indexes them: (vector index, PDQ index, their vectors with regions, their
    keypoints where local features are on)."""
    ref_all, ref_hashes, ref_points = _embed_all(
        embedder,
        references,
        regions=reference_regions,
        keypoints=reference_keypoints if local_features else None,
    )
    ref_vectors = ref_all[:, 0]
    ids = np.arange(len(references), dtype=np.int64)
    vectors = VectorIndex.build(ids, ref_vectors, [r.brand for r in references], regions=list(ref_all[:, 1:]))
    hashes = PdqIndex()
    hashes.add(ids.tolist(), ref_hashes)
    return vectors, hashes, ref_all, ref_points


def apply_scorers(
    outcomes: Sequence[QueryOutcome],
    scorers: Mapping[str, Scorer],
    thresholds: Mapping[str, Thresholds],
    min_match_similarity: float,
) -> None:
    for outcome in outcomes:
        for name, scorer in scorers.items():
            result = score(
                scorer, outcome.neighbours, None, min_match_similarity, thresholds[name], outcome.lookalike
            )
            outcome.results[name] = (result.probability, result.verdict)


def summarise(
    outcomes: Sequence[QueryOutcome], scorer_names: Sequence[str], positives: int | None = None
) -> dict[str, Any]:
    """``positives``: how many (query, reference) pairs are true copies (default: one per in-bank query;
    more where a source has several references, as in the look-alike set)."""
    from sklearn.metrics import roc_auc_score

    in_bank = [o for o in outcomes if o.item.label != "distractor"]
    distractors = [o for o in outcomes if o.item.label == "distractor"]
    truth = np.array([o.item.label == "counterfeit" for o in in_bank], dtype=int)
    pairs = [(strength, source == o.item.source) for o in in_bank for source, strength in o.matches]
    pairs += [(strength, False) for o in distractors for _, strength in o.matches]
    report: dict[str, Any] = {
        "queries": len(outcomes),
        "in_bank_queries": len(in_bank),
        "distractor_queries": len(distractors),
        "copy_match_micro_ap": round(micro_average_precision(pairs, positives or len(in_bank)), 4),
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
            "three_way_accuracy": round(float(np.mean([_right(o, name) for o in outcomes])), 4)
            if outcomes
            else None,
            "decided": _decided(in_bank, name),
            "roc_auc": round(float(roc_auc_score(truth, probabilities)), 4)
            if len(set(truth.tolist())) == 2
            else None,
            "ece": round(expected_calibration_error(probabilities, truth), 4),
            "verdicts": per_verdict,
            "inconclusive_rate_in_bank": round(float(np.mean([v in ABSTENTIONS for v in verdicts])), 4),
            "distractor_inconclusive_rate": round(
                float(np.mean([o.results[name][1] in ABSTENTIONS for o in distractors])), 4
            )
            if distractors
            else None,
        }
    report["regimes"] = {
        str(regime): sum(o.features.regime == regime for o in outcomes)
        for regime in ("copy", "lookalike", "copy+lookalike", None)
    }
    report["per_transform"] = _per_transform(outcomes, scorer_names)
    return report


LISTING_SIZE = 4  # photos per listing at most, as marketplaces show them


def build_listings(outcomes: Sequence[QueryOutcome], size: int = LISTING_SIZE) -> list[list[QueryOutcome]]:
    """In-bank queries grouped into listings: photos of one product (same source and label, in set order),
    split evenly into listings of 2 to ``size`` photos; a product with one photo makes no listing."""
    products: dict[tuple[str, str], list[QueryOutcome]] = {}
    for outcome in outcomes:
        if outcome.item.label != "distractor":
            products.setdefault((outcome.item.source, outcome.item.label), []).append(outcome)
    listings = []
    for photos in products.values():
        if len(photos) >= 2:
            parts = -(-len(photos) // size)
            listings += [list(part) for part in np.array_split(np.array(photos, dtype=object), parts)]
    return listings


def listing_report(outcomes: Sequence[QueryOutcome], scorer: str, thresholds: Thresholds) -> dict[str, Any]:
    """Listing-level figures (scoring.listing) for each way of combining photos, on listings built from the
    set's queries: ROC-AUC, decided precision at coverage, ECE; and the look-alike pooling that fits best."""
    from sklearn.metrics import roc_auc_score

    listings = build_listings(outcomes)
    if not listings:
        return {"listings": 0}
    truth = np.array([photos[0].item.label == "counterfeit" for photos in listings], dtype=int)
    photos = [
        [PhotoOutcome(o.results[scorer][0], o.features.regime, o.item.brand, _exact_copy(o)) for o in listing]
        for listing in listings
    ]
    report: dict[str, Any] = {"listings": len(listings), "photos": sum(map(len, listings)), "scorer": scorer}
    for aggregation in AGGREGATIONS:
        scored = [score_listing(listing, thresholds, aggregation=aggregation) for listing in photos]
        probabilities = np.array([s.probability for s in scored])
        decided = [
            (s.verdict == LIKELY_COUNTERFEIT) == bool(t)
            for s, t in zip(scored, truth)
            if s.verdict not in ABSTENTIONS
        ]
        report[aggregation] = {
            "roc_auc": round(float(roc_auc_score(truth, probabilities)), 4)
            if len(set(truth.tolist())) == 2
            else None,
            "decided": {
                "coverage": round(len(decided) / len(scored), 4),
                "precision": round(float(np.mean(decided)), 4) if decided else None,
            },
            "ece": round(expected_calibration_error(probabilities, truth), 4),
        }
    report["fitted_pooling"] = fit_pooling(photos, truth)
    return report


def _exact_copy(outcome: QueryOutcome) -> bool:
    """A PDQ near-duplicate or a verified keypoint copy matched (not CLIP alone)."""
    values = outcome.features.values
    return any(
        values[f"{signal}_{label}_match"]
        for signal in ("pdq", "local")
        for label in ("counterfeit", "authentic")
    )


def fit_pooling(listings: Sequence[Sequence[PhotoOutcome]], truth: np.ndarray) -> float:
    """The look-alike pooling exponent (scoring.listing.LOOKALIKE_POOLING) with the least log loss over the
    listings with evidence."""
    with_evidence = [
        ([photo for photo in listing if photo.has_evidence], label)
        for listing, label in zip(listings, truth)
        if any(photo.has_evidence for photo in listing)
    ]
    if not with_evidence:
        return LOOKALIKE_POOLING
    labels = np.array([label for _, label in with_evidence])
    grid = np.round(np.linspace(0, 1, 21), 2)
    losses = []
    for pooling in grid:
        logits = np.array([by_evidence(photos, float(pooling))[0] for photos, _ in with_evidence])
        p = np.clip(1 / (1 + np.exp(-logits)), 1e-6, 1 - 1e-6)
        losses.append(float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))))
    return float(grid[int(np.argmin(losses))])


def _right(outcome: QueryOutcome, scorer: str) -> bool:
    """Right: a counterfeit or genuine item decided so; a distractor (not in the banks) not decided at all."""
    verdict = outcome.results[scorer][1]
    if outcome.item.label == "distractor":
        return verdict in ABSTENTIONS
    return verdict == {"counterfeit": LIKELY_COUNTERFEIT, "authentic": LIKELY_AUTHENTIC}[outcome.item.label]


def _decided(in_bank: Sequence[QueryOutcome], scorer: str) -> dict[str, float | None]:
    """Precision of the verdicts that were decided (not inconclusive nor no_match), and the share decided."""
    decided = [o for o in in_bank if o.results[scorer][1] not in ABSTENTIONS]
    return {
        "coverage": round(len(decided) / len(in_bank), 4) if in_bank else None,
        "precision": round(float(np.mean([_right(o, scorer) for o in decided])), 4) if decided else None,
    }


def _per_transform(
    outcomes: Sequence[QueryOutcome], scorer_names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per transform family (a query made with two counts for both): top-1 copy accuracy of in-bank
    queries (the nearest reference is the one it was made from) and each scorer's 3-way accuracy."""
    families: dict[str, list[QueryOutcome]] = {}
    for outcome in outcomes:
        for family in (outcome.item.transform or "none").split("+"):
            families.setdefault(family, []).append(outcome)
    table = {}
    for family, members in sorted(families.items()):
        in_bank = [o for o in members if o.item.label != "distractor"]
        table[family] = {
            "queries": len(members),
            "top1": round(float(np.mean([o.top_source == o.item.source for o in in_bank])), 4)
            if in_bank
            else None,
            **{
                f"{name}_three_way": round(float(np.mean([_right(o, name) for o in members])), 4)
                for name in scorer_names
            },
        }
    return table


def evaluate_set(
    items: Sequence[Item],
    embedder: Embedder,
    min_match_similarity: float,
    temperature: float,
    default_thresholds: Thresholds,
    calibration=None,
    regions: tuple[Region, ...] = (WHOLE,),
    reference_regions: tuple[Region, ...] = (WHOLE,),
    local_features: bool = True,
    min_distinctiveness: float = 0.0,
    lookalike_min_cv_auc: float = 0.8,
    lookalike_min_precision: float = 0.9,
) -> tuple[dict[str, Any], list[QueryOutcome], list[str]]:
    """Run every scorer we ship on the set: CLIP only, + PDQ, + local features, + the brands' look-alike
    classifiers (the default), and the calibration if given."""
    from scoring.scorers import MarginScorer

    # The ablation: each signal added in turn; "fused" is what the service runs by default.
    scorers: dict[str, Scorer] = {
        "clip_only": MarginScorer(
            min_match_similarity, temperature, use_pdq=False, use_lookalike=False, use_local=False
        ),
        "clip_pdq": MarginScorer(min_match_similarity, temperature, use_lookalike=False, use_local=False),
        "clip_pdq_local": MarginScorer(min_match_similarity, temperature, use_lookalike=False),
        "fused": MarginScorer(min_match_similarity, temperature, use_local=local_features),
    }
    if not local_features:
        del scorers["clip_pdq_local"]
    thresholds = {name: default_thresholds for name in scorers}
    if calibration is not None:
        scorers["calibrated"] = calibration.scorer()
        thresholds["calibrated"] = Thresholds(**calibration.thresholds)
    outcomes = run_pipeline(
        items,
        embedder,
        min_match_similarity,
        regions=regions,
        reference_regions=reference_regions,
        local_features=local_features,
        min_distinctiveness=min_distinctiveness,
        lookalike_min_cv_auc=lookalike_min_cv_auc,
        lookalike_min_precision=lookalike_min_precision,
    )
    apply_scorers(outcomes, scorers, thresholds, min_match_similarity)
    per_source = Counter(i.source for i in items if i.role == "reference")
    positives = sum(per_source[o.item.source] for o in outcomes if o.item.label != "distractor")
    report = summarise(outcomes, list(scorers), positives)
    report["model"] = embedder.info.spec
    report["min_match_similarity"] = min_match_similarity
    report["min_distinctiveness"] = min_distinctiveness
    report["query_regions"] = [r.name for r in regions]
    report["reference_regions"] = [r.name for r in reference_regions]
    report["local_features"] = local_features
    report["lookalike_min_cv_auc"] = lookalike_min_cv_auc
    report["lookalike_min_precision"] = lookalike_min_precision
    report["listings"] = listing_report(outcomes, "fused", default_thresholds)
    if calibration is not None:
        report["calibration"] = calibration.version
    return report, outcomes, list(scorers)


def training_examples(outcomes: Sequence[QueryOutcome]) -> tuple[list[list[float]], list[int]]:
    """Features and truth of in-bank queries that had evidence (the only ones a scorer decides on)."""
    usable = [o for o in outcomes if o.item.label != "distractor" and o.features.has_evidence]
    return [o.features.vector() for o in usable], [int(o.item.label == "counterfeit") for o in usable]
