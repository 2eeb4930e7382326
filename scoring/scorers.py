"""Scorers: evidence features → counterfeit probability → verdict (by the brand's thresholds).

Shipped default, ``fused-v1`` (CLIP margin plus PDQ):

* no evidence (no CLIP neighbour at or above the match similarity ``m``, no PDQ match, no verified
  keypoints, no brand classifier): probability ``0.5``, verdict ``no_match`` — nothing relevant was found,
  which is not the same as ``inconclusive`` (evidence that conflicts or is too weak to decide): a platform
  acts on neither, but only the second is a question for a brand's reviewer;
* otherwise ``p = sigmoid((max(c, m) − max(a, m)) / T + 4·[PDQ match to a fake] − 4·[PDQ match to a
  genuine photo])`` where ``c``/``a`` are the best CLIP similarities to counterfeit/authentic
  references and ``T`` the temperature. A PDQ near-duplicate of a known fake is the strongest
  evidence there is, and moves the logit by 4 (≈ ×55 in odds).
* the look-alike regime (``scoring.lookalike``): where the brand's classifier applies, its calibrated
  logit *replaces* the CLIP margin (``fused-v3``; ``fused-v2`` added the two). Both read the same
  embeddings, so adding them counted one piece of evidence twice, and the probe weighs it better: it
  learned which directions tell the brand's fakes from its genuine items, where the margin compares
  two nearest photos (look-alike set, seed 0: decided precision 0.855 → 0.882, ROC-AUC 0.891 → 0.909).
  PDQ still adds: a near-duplicate of a known fake is independent of what the probe learned;
* local-feature verification (``fused-v4``, ``index.local_features``): a top candidate whose keypoints
  verify as a geometric copy moves the logit by 4 towards its label, like a PDQ match. It catches what
  PDQ (global pixels) and CLIP (a global embedding) both lose: screenshots, big crops, pads, large
  overlays (copy set, seed 0: 3-way accuracy 0.783 → 0.921);
* ``likely_counterfeit`` if ``p ≥`` the counterfeit threshold, ``likely_authentic`` if ``p ≤`` the
  authentic threshold, else ``inconclusive``.

``margin-v1`` is the same without PDQ (CLIP only). ``CalibratedScorer`` is a logistic regression
on all features fitted by ``training.calibrate`` from labelled outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

from scoring.features import FEATURE_NAMES, Features, Neighbour, compute_features
from scoring.lookalike import LookAlike

LIKELY_COUNTERFEIT = "likely_counterfeit"
LIKELY_AUTHENTIC = "likely_authentic"
INCONCLUSIVE = "inconclusive"
NO_MATCH = "no_match"
ABSTENTIONS = frozenset({INCONCLUSIVE, NO_MATCH})  # the verdicts that decide nothing
PDQ_LOGIT = 4.0
LOCAL_LOGIT = 4.0  # a verified geometric copy is evidence of the same strength as a PDQ near-duplicate


@dataclass(frozen=True)
class Thresholds:
    counterfeit: float = 0.7
    authentic: float = 0.3


@dataclass(frozen=True)
class Score:
    verdict: str
    probability: float
    brand: str | None  # the brand the evidence points to
    features: Features


class Scorer(Protocol):
    name: str

    def probability(self, features: Features) -> float: ...


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 60.0), -60.0)))


@dataclass(frozen=True)
class MarginScorer:
    min_match_similarity: float
    temperature: float
    use_pdq: bool = True
    use_lookalike: bool = True
    use_local: bool = True

    @property
    def name(self) -> str:
        base = "margin-v1" if not self.use_pdq else "fused-v3" if self.use_lookalike else "fused-v1"
        return {"fused-v3": "fused-v4"}.get(base, base + "-local") if self.use_local else base

    def probability(self, features: Features) -> float:
        v, m = features.values, self.min_match_similarity
        if self.use_lookalike and v["lookalike_applies"]:
            logit = v["lookalike_logit"]
        else:
            logit = (max(v["best_counterfeit_sim"], m) - max(v["best_authentic_sim"], m)) / self.temperature
        if self.use_pdq:
            logit += PDQ_LOGIT * (v["pdq_counterfeit_match"] - v["pdq_authentic_match"])
        if self.use_local:
            logit += LOCAL_LOGIT * (v["local_counterfeit_match"] - v["local_authentic_match"])
        return sigmoid(logit)


@dataclass(frozen=True)
class CalibratedScorer:
    version: str
    coefficients: tuple[float, ...]
    intercept: float

    @property
    def name(self) -> str:
        return f"calibrated-{self.version}"

    def probability(self, features: Features) -> float:
        return self.probability_of(features.vector())

    def probability_of(self, vector: Sequence[float]) -> float:
        return sigmoid(self.intercept + sum(c * x for c, x in zip(self.coefficients, vector)))

    def __post_init__(self) -> None:
        if len(self.coefficients) != len(FEATURE_NAMES):
            raise ValueError(
                f"calibration has {len(self.coefficients)} coefficients; the features are {len(FEATURE_NAMES)}"
            )


def decide(probability: float, thresholds: Thresholds) -> str:
    if probability >= thresholds.counterfeit:
        return LIKELY_COUNTERFEIT
    if probability <= thresholds.authentic:
        return LIKELY_AUTHENTIC
    return INCONCLUSIVE


def score(
    scorer: Scorer,
    neighbours: Sequence[Neighbour],
    brand_hint: str | None,
    min_match_similarity: float,
    thresholds: Thresholds,
    lookalike: LookAlike | None = None,
) -> Score:
    features = compute_features(neighbours, brand_hint, min_match_similarity, lookalike)
    if not features.has_evidence:
        return Score(NO_MATCH, 0.5, brand_hint, features)
    probability = round(scorer.probability(features), 6)
    if features.regime == "lookalike":
        brand = lookalike.brand
        thresholds = honest(thresholds, lookalike)
    else:
        brand = features.strongest.brand if features.strongest else brand_hint
    return Score(decide(probability, thresholds), probability, brand, features)


def honest(thresholds: Thresholds, lookalike: LookAlike) -> Thresholds:
    """Where only the brand's classifier speaks, it decides no nearer the middle than its held-out verdicts
    reached the precision a platform acts on (scoring.lookalike_fit.precise_bounds): between, inconclusive."""
    return Thresholds(
        max(thresholds.counterfeit, lookalike.decides_counterfeit_at),
        min(thresholds.authentic, lookalike.decides_authentic_at),
    )
