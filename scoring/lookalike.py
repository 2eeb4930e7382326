"""The look-alike regime: a brand's classifier over the frozen embeddings of its two banks.

Copy matching recognises re-uploads of photos the banks hold. A *new* photo of a known fake design
is not a copy of anything, yet the brand's counterfeit bank holds dozens of photos of that design
and its authentic bank the genuine one: a linear probe on the embeddings separates them where a
nearest-neighbour vote cannot (it weighs the directions that tell the designs apart, not the whole
picture). ``training.lookalike`` fits one per brand once both banks are big enough; here it is
applied to a query.

A probe only speaks about photos of that brand's products: it applies when the query's nearest
reference of the brand is at least as similar as the brand's own photos are to each other (the
``gate``, a low percentile of its references' leave-one-out nearest similarities). An unrelated
image never reaches the probe, so it stays ``inconclusive`` instead of being forced to one side.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from scoring.features import Neighbour


@dataclass(frozen=True)
class BrandProbe:
    brand: str
    model_fingerprint: str
    version: str
    coefficients: tuple[float, ...]  # already Platt-scaled: ``coefficients · v + intercept`` is a calibrated logit
    intercept: float
    gate: float  # the query's nearest reference of this brand must be at least this similar
    cv_accuracy: float  # cross-validated, on the brand's references
    cv_auc: float
    counts: dict[str, int] = field(default_factory=dict)  # references per bank it was fitted on
    trained_through_seq: int = 0  # the change-log position its banks were read at

    def logit(self, vector: np.ndarray) -> float:
        return float(np.dot(np.asarray(self.coefficients, dtype=np.float32), vector) + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BrandProbe":
        return cls(**{**data, "coefficients": tuple(data["coefficients"])})


@dataclass(frozen=True)
class LookAlike:
    """What the brand's classifier says about one query (the evidence shows it)."""
    brand: str
    version: str
    probability: float
    logit: float
    nearest_similarity: float
    gate: float
    cv_accuracy: float
    cv_auc: float
    counts: dict[str, int]


def _probed(probes: Mapping[str, BrandProbe], neighbours: Sequence[Neighbour], brand_hint: str | None) -> list[Neighbour]:
    """CLIP neighbours that are references of a brand with a classifier (the hinted brand, if any)."""
    return [n for n in neighbours if n.shared_by is None and n.clip_similarity is not None
            and n.brand in probes and (brand_hint is None or n.brand == brand_hint)]


def gate_candidates(probes: Mapping[str, BrandProbe], neighbours: Sequence[Neighbour], brand_hint: str | None) -> list[int]:
    """The references whose whole-image similarity to the query the gate needs."""
    return [n.reference_id for n in _probed(probes, neighbours, brand_hint)]


def look_alike(probes: Mapping[str, BrandProbe], neighbours: Sequence[Neighbour], vector: np.ndarray,
               brand_hint: str | None, whole: Mapping[int, float] | None = None) -> LookAlike | None:
    """The classifier of the hinted brand — without a hint, of the nearest brand that has one — if the
    query is close enough to that brand's references for it to know what it is looking at; else None.

    (Without a hint the nearest reference of all may be another brand's photo on a similar background;
    the nearest brand *with a classifier* is the one worth asking, and its gate still has to pass.)

    ``whole``: the query's whole-image similarity to those references (``gate_candidates``). The gate was
    set on whole-image similarities, and a region match (a crop, a corner) says nothing about whether the
    photo shows the brand's product as a whole; without it, the evidence's similarity is used."""
    own = _probed(probes, neighbours, brand_hint)
    if not own:
        return None

    def similarity(n: Neighbour) -> float:
        return whole.get(n.reference_id, -1.0) if whole is not None else n.clip_similarity

    nearest = max(own, key=similarity)
    probe = probes[nearest.brand]
    if similarity(nearest) < probe.gate:
        return None
    logit = probe.logit(vector)
    probability = 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))
    return LookAlike(probe.brand, probe.version, round(probability, 6), round(logit, 4), round(similarity(nearest), 6),
                     round(probe.gate, 6), probe.cv_accuracy, probe.cv_auc, dict(probe.counts))
