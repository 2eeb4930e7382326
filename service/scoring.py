"""Scoring v1: nearest counterfeit vs nearest authentic similarity → probability → verdict.

Let ``c`` be the best (centred cosine) similarity to a *counterfeit* reference among the
neighbours, ``a`` the best similarity to an *authentic* one, and ``m`` the minimum match
similarity. A side with no neighbour at or above ``m`` counts as ``m``.

* If ``max(c, a) < m`` nothing matches: ``probability = 0.5`` (no evidence either way), verdict
  ``inconclusive``.
* Otherwise ``probability = sigmoid((max(c, m) - max(a, m)) / T)`` with temperature ``T``:
  a photo much closer to a known fake than to any genuine photo scores near 1, the reverse near 0,
  and equally close to both scores 0.5.
* Verdict: ``likely_counterfeit`` if ``probability >= counterfeit_threshold``, ``likely_authentic``
  if ``probability <= authentic_threshold``, else ``inconclusive``.

This is not calibrated; a trained scorer replaces it through the :class:`Scorer` protocol.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

LIKELY_COUNTERFEIT = "likely_counterfeit"
LIKELY_AUTHENTIC = "likely_authentic"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Neighbour:
    reference_id: int
    brand: str
    label: str  # "authentic" | "counterfeit"
    product: str | None
    similarity: float


@dataclass(frozen=True)
class Score:
    verdict: str
    probability: float
    brand: str | None  # the brand the evidence points to


class Scorer(Protocol):
    name: str

    def score(self, neighbours: Sequence[Neighbour], brand_hint: str | None) -> Score: ...


@dataclass(frozen=True)
class MarginScorer:
    min_match_similarity: float
    temperature: float
    counterfeit_threshold: float
    authentic_threshold: float
    name: str = "margin-v1"

    def score(self, neighbours: Sequence[Neighbour], brand_hint: str | None) -> Score:
        m = self.min_match_similarity
        best = {label: max((n.similarity for n in neighbours if n.label == label), default=-1.0)
                for label in ("counterfeit", "authentic")}
        top = max(neighbours, key=lambda n: n.similarity, default=None)
        if top is None or top.similarity < m:
            return Score(INCONCLUSIVE, 0.5, brand_hint)
        margin = max(best["counterfeit"], m) - max(best["authentic"], m)
        probability = 1.0 / (1.0 + math.exp(-margin / self.temperature))
        if probability >= self.counterfeit_threshold:
            verdict = LIKELY_COUNTERFEIT
        elif probability <= self.authentic_threshold:
            verdict = LIKELY_AUTHENTIC
        else:
            verdict = INCONCLUSIVE
        return Score(verdict, round(probability, 6), top.brand)
