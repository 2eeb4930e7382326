"""The look-alike regime: a brand's classifier over the frozen embeddings of its two banks.

Copy matching recognises re-uploads of photos the banks hold. A *new* photo of a known fake design
is not a copy of anything, yet the brand's counterfeit bank holds dozens of photos of that design
and its authentic bank the genuine one: a linear probe on the embeddings separates them where a
nearest-neighbour vote cannot (it weighs the directions that tell the designs apart, not the whole
picture). ``scoring.lookalike_fit`` fits one per brand once both banks are big enough; here it is
applied to a query.

A probe only speaks about photos of that brand's products: it applies when the brand's membership
model (the brand's references against other products, fitted beside it) scores the query at least as
high as it scores most of the brand's own held-out references, and higher than 199 in 200 held-out other
products (the ``membership_gate``). A product of
a brand that registered nothing never reaches the probe, so it stays ``inconclusive`` instead of being
forced to one side. Both models see every view the service embedded of the query (its whole image and
regions) and average their decision values over them, as they were fitted on the references' views.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np


@dataclass(frozen=True)
class BrandProbe:
    brand: str
    model_fingerprint: str
    version: str
    coefficients: tuple[
        float, ...
    ]  # already Platt-scaled: ``coefficients · v + intercept`` is a calibrated logit
    intercept: float
    membership_coefficients: tuple[
        float, ...
    ]  # ``· v + membership_intercept``: is this the brand's product at all
    membership_intercept: float
    membership_gate: float  # the query's membership score must be at least this
    cv_accuracy: float  # cross-validated, on the brand's references
    cv_auc: float
    counts: dict[str, int] = field(default_factory=dict)  # references per bank it was fitted on
    trained_through_seq: int = 0  # the change-log position its banks were read at
    format: int = 2
    # Where its held-out verdicts reach the precision a platform acts on (scoring.lookalike_fit): it decides
    # "counterfeit" only at or above the first, "authentic" at or below the second; between, it abstains.
    # A probe fitted before these existed decides at the brand's thresholds alone.
    decides_counterfeit_at: float = 0.0
    decides_authentic_at: float = 1.0
    decided_share: float | None = None  # the share of held-out references those bounds decide

    def logit(self, vectors: np.ndarray) -> float:
        """The calibrated logit, averaged over the query's views (``vectors``: one row per view, or one vector)."""
        return float(
            np.mean(np.atleast_2d(vectors) @ np.asarray(self.coefficients, dtype=np.float32)) + self.intercept
        )

    def membership(self, vectors: np.ndarray) -> float:
        """How far above its gate the query scores as one of the brand's products (≥ 0: the probe applies)."""
        scores = np.atleast_2d(vectors) @ np.asarray(self.membership_coefficients, dtype=np.float32)
        return float(np.mean(scores) + self.membership_intercept - self.membership_gate)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BrandProbe":
        return cls(
            **{
                **data,
                "coefficients": tuple(data["coefficients"]),
                "membership_coefficients": tuple(data["membership_coefficients"]),
            }
        )


@dataclass(frozen=True)
class LookAlike:
    """What the brand's classifier says about one query (the evidence shows it)."""

    brand: str
    version: str
    probability: float
    logit: float
    membership: float  # the query's membership score above the brand's gate (≥ 0 here)
    cv_accuracy: float
    cv_auc: float
    counts: dict[str, int]
    decides_counterfeit_at: float = 0.0
    decides_authentic_at: float = 1.0
    decided_share: float | None = None


class ProbeSet(Mapping[str, BrandProbe]):
    """Brands' classifiers with their membership models stacked in one matrix: scoring every brand for
    a query is one matrix product (µs for hundreds of brands), not a loop over them."""

    def __init__(self, probes: Mapping[str, BrandProbe]):
        self._probes = dict(probes)
        self._brands = list(self._probes)
        self._weights = (
            np.array([p.membership_coefficients for p in self._probes.values()], dtype=np.float32)
            if self._probes
            else np.zeros((0, 0), np.float32)
        )
        self._offsets = np.array(
            [p.membership_intercept - p.membership_gate for p in self._probes.values()], dtype=np.float32
        )

    def __getitem__(self, brand: str) -> BrandProbe:
        return self._probes[brand]

    def __iter__(self) -> Iterator[str]:
        return iter(self._probes)

    def __len__(self) -> int:
        return len(self._probes)

    def best_member(self, vectors: np.ndarray) -> tuple[float, BrandProbe] | None:
        """The brand whose membership model scores the query's views highest, and by how much above its gate."""
        if not self._probes:
            return None
        margins = (np.atleast_2d(vectors) @ self._weights.T).mean(axis=0) + self._offsets
        best = int(np.argmax(margins))
        return float(margins[best]), self._probes[self._brands[best]]


def look_alike(
    probes: Mapping[str, BrandProbe], vectors: np.ndarray, brand_hint: str | None
) -> LookAlike | None:
    """The classifier of the hinted brand — without a hint, of the brand whose membership model scores the
    query highest — if the query passes that brand's membership gate; else None.

    ``vectors``: the query's views as embedded (whole image first, then its regions). Every brand with a
    classifier is scored, not only the brands among the nearest references: the nearest reference of all
    may be another brand's photo on a similar background."""
    if brand_hint is not None:
        probe = probes.get(brand_hint)
        best = None if probe is None else (probe.membership(vectors), probe)
    else:
        best = (probes if isinstance(probes, ProbeSet) else ProbeSet(probes)).best_member(vectors)
    if best is None or best[0] < 0:
        return None
    margin, probe = best
    logit = probe.logit(vectors)
    probability = 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))
    return LookAlike(
        probe.brand,
        probe.version,
        round(probability, 6),
        round(logit, 4),
        round(margin, 4),
        probe.cv_accuracy,
        probe.cv_auc,
        dict(probe.counts),
        probe.decides_counterfeit_at,
        probe.decides_authentic_at,
        probe.decided_share,
    )
