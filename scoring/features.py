"""Features of a check's evidence, the input of every scorer (default and calibrated)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from index.pdq import PDQ_BITS

FEATURE_NAMES = (
    "best_counterfeit_sim",      # best CLIP (centred cosine) similarity to a counterfeit reference, floored at 0
    "best_authentic_sim",        # the same for authentic references
    "margin",                    # best_counterfeit_sim - best_authentic_sim
    "log_n_counterfeit_above",   # log1p(number of counterfeit references above the match similarity)
    "log_n_authentic_above",
    "pdq_counterfeit_match",     # 1 if a counterfeit reference is a PDQ near-duplicate
    "pdq_authentic_match",
    "pdq_counterfeit_closeness", # 1 - best distance / 256 among PDQ matches (0 when none)
    "pdq_authentic_closeness",
    "brand_agrees",              # 1 if the strongest evidence is of the hinted brand (or no hint)
)


@dataclass(frozen=True)
class Neighbour:
    reference_id: int
    brand: str
    label: str  # "authentic" | "counterfeit"
    product: str | None
    clip_similarity: float | None
    pdq_distance: int | None  # set only when PDQ matched (within the configured Hamming distance)
    shared_by: str | None = None  # a known-fake signal another platform shared (reference_id is the signal's id)

    @property
    def strength(self) -> float:
        """For ordering evidence: CLIP similarity, or PDQ closeness for PDQ-only matches."""
        pdq = 1 - self.pdq_distance / PDQ_BITS if self.pdq_distance is not None else -1.0
        return max(self.clip_similarity if self.clip_similarity is not None else -1.0, pdq)


@dataclass(frozen=True)
class Features:
    values: dict[str, float]
    has_evidence: bool  # any CLIP neighbour above the match similarity, or any PDQ match
    strongest: Neighbour | None

    def vector(self) -> list[float]:
        return [self.values[name] for name in FEATURE_NAMES]


def compute_features(neighbours: Sequence[Neighbour], brand_hint: str | None, min_match_similarity: float) -> Features:
    """``pdq_distance`` is set only on PDQ matches (the matcher applied the distance threshold)."""
    values: dict[str, float] = {}
    for label in ("counterfeit", "authentic"):
        mine = [n for n in neighbours if n.label == label]
        sims = [n.clip_similarity for n in mine if n.clip_similarity is not None]
        distances = [n.pdq_distance for n in mine if n.pdq_distance is not None]
        values[f"best_{label}_sim"] = max([0.0, *sims])
        values[f"log_n_{label}_above"] = math.log1p(sum(s >= min_match_similarity for s in sims))
        values[f"pdq_{label}_match"] = float(bool(distances))
        values[f"pdq_{label}_closeness"] = 1 - min(distances) / PDQ_BITS if distances else 0.0
    values["margin"] = values["best_counterfeit_sim"] - values["best_authentic_sim"]
    strongest = max(neighbours, key=lambda n: n.strength, default=None)
    values["brand_agrees"] = float(brand_hint is None or (strongest is not None and strongest.brand == brand_hint))
    has_evidence = bool(values["pdq_counterfeit_match"] or values["pdq_authentic_match"]
                        or any(n.clip_similarity is not None and n.clip_similarity >= min_match_similarity for n in neighbours))
    return Features(values, has_evidence, strongest)
