"""Features of a check's evidence, the input of every scorer (default and calibrated)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from index.local_features import DOMINANCE
from index.pdq import PDQ_BITS

if TYPE_CHECKING:
    from scoring.lookalike import LookAlike

FEATURE_NAMES = (
    "best_counterfeit_sim",  # best CLIP (centred cosine) similarity to a counterfeit reference, floored at 0;
    # a crowded neighbour's (scoring.distinctiveness) counts at most the match similarity
    "best_authentic_sim",  # the same for authentic references
    "margin",  # best_counterfeit_sim - best_authentic_sim
    "log_n_counterfeit_above",  # log1p(number of counterfeit references above the match similarity)
    "log_n_authentic_above",
    "pdq_counterfeit_match",  # 1 if a counterfeit reference is a PDQ near-duplicate
    "pdq_authentic_match",
    "pdq_counterfeit_closeness",  # 1 - best distance / 256 among PDQ matches (0 when none)
    "pdq_authentic_closeness",
    "brand_agrees",  # 1 if the strongest evidence is of the hinted brand (or no hint)
    "lookalike_applies",  # 1 if the brand's classifier applies to the query (scoring.lookalike)
    "lookalike_logit",  # its calibrated logit (0 when it does not apply)
    "local_counterfeit_match",  # 1 if a counterfeit candidate is a verified geometric copy (index.local_features)
    "local_authentic_match",
    "local_counterfeit_inliers",  # log1p(inliers of the best verified counterfeit candidate; 0 when none)
    "local_authentic_inliers",
    "local_counterfeit_coverage",  # its inlier coverage (inliers over the keypoints a copy should show; 0 when none)
    "local_authentic_coverage",
)


@dataclass(frozen=True)
class Neighbour:
    reference_id: int
    brand: str
    label: str  # "authentic" | "counterfeit"
    product: str | None
    clip_similarity: float | None
    pdq_distance: int | None  # set only when PDQ matched (within the configured Hamming distance)
    shared_by: str | None = (
        None  # a known-fake signal another platform shared (reference_id is the signal's id)
    )
    region: str | None = None  # which query region matched it by CLIP (index.regions), when one did
    reference_region: str | None = None  # and which region of the reference ("whole", "top-left", …)
    inliers: int | None = (
        None  # set where its keypoints were verified against the query's (index.local_features)
    )
    inlier_coverage: float | None = None
    local_match: bool = (
        False  # a verified geometric copy (inliers and coverage above the signal's thresholds)
    )
    distinctiveness: float | None = None  # how far its CLIP similarity stands out (scoring.distinctiveness)
    crowded: bool = False  # below the model's min distinctiveness: no copy evidence by CLIP alone

    def clip_match(self, min_match_similarity: float) -> bool:
        """Copy evidence by CLIP: at or above the match similarity and not crowded."""
        return (
            self.clip_similarity is not None
            and self.clip_similarity >= min_match_similarity
            and not self.crowded
        )

    @property
    def strength(self) -> float:
        """For ordering evidence: CLIP similarity, PDQ closeness for PDQ matches, and for a verified geometric
        copy 0.9 + 0.1 × coverage (as sure as a near PDQ match: 1 in 48 unrelated photos verifies)."""
        pdq = 1 - self.pdq_distance / PDQ_BITS if self.pdq_distance is not None else -1.0
        local = 0.9 + 0.1 * min(self.inlier_coverage or 0.0, 1.0) if self.local_match else -1.0
        return max(self.clip_similarity if self.clip_similarity is not None else -1.0, pdq, local)


@dataclass(frozen=True)
class Features:
    values: dict[str, float]
    has_evidence: bool  # a copy (CLIP neighbour above the match similarity, PDQ match, verified keypoints) or the brand classifier
    strongest: Neighbour | None
    lookalike: "LookAlike | None" = None

    @property
    def regime(self) -> str | None:
        """Which evidence decides: nearest copies, the brand's classifier, both, or nothing."""
        copy = self.has_evidence and (
            self.values["pdq_counterfeit_match"]
            or self.values["pdq_authentic_match"]
            or self.values["local_counterfeit_match"]
            or self.values["local_authentic_match"]
            or self.values["log_n_counterfeit_above"]
            or self.values["log_n_authentic_above"]
        )
        return {(True, True): "copy+lookalike", (True, False): "copy", (False, True): "lookalike"}.get(
            (bool(copy), self.lookalike is not None)
        )

    def vector(self) -> list[float]:
        return [self.values[name] for name in FEATURE_NAMES]


def compute_features(
    neighbours: Sequence[Neighbour],
    brand_hint: str | None,
    min_match_similarity: float,
    lookalike: "LookAlike | None" = None,
) -> Features:
    """``pdq_distance`` is set only on PDQ matches (the matcher applied the distance threshold)."""
    values: dict[str, float] = {}
    for label in ("counterfeit", "authentic"):
        mine = [n for n in neighbours if n.label == label]
        # A crowded neighbour is as near as the match similarity at most: the margin scorer floors both banks'
        # best at it, so a crowded match neither decides nor outweighs a real one of the other bank.
        sims = [
            min(n.clip_similarity, min_match_similarity) if n.crowded else n.clip_similarity
            for n in mine
            if n.clip_similarity is not None
        ]
        distances = [n.pdq_distance for n in mine if n.pdq_distance is not None]
        values[f"best_{label}_sim"] = max([0.0, *sims])
        values[f"log_n_{label}_above"] = math.log1p(sum(n.clip_match(min_match_similarity) for n in mine))
        values[f"pdq_{label}_match"] = float(bool(distances))
        values[f"pdq_{label}_closeness"] = 1 - min(distances) / PDQ_BITS if distances else 0.0
        verified = max((n for n in mine if n.local_match), key=lambda n: n.inliers or 0, default=None)
        other = max((n.inliers or 0 for n in neighbours if n.label != label), default=0)
        if verified is not None and other >= DOMINANCE * verified.inliers:
            verified = (
                None  # both banks' photos match about as well: contradictory, not a copy of one of them
            )
        values[f"local_{label}_match"] = float(verified is not None)
        values[f"local_{label}_inliers"] = math.log1p(verified.inliers) if verified else 0.0
        values[f"local_{label}_coverage"] = verified.inlier_coverage if verified else 0.0
    values["margin"] = values["best_counterfeit_sim"] - values["best_authentic_sim"]
    strongest = max(neighbours, key=lambda n: n.strength, default=None)
    values["brand_agrees"] = float(
        brand_hint is None or (strongest is not None and strongest.brand == brand_hint)
    )
    values["lookalike_applies"] = float(lookalike is not None)
    values["lookalike_logit"] = lookalike.logit if lookalike is not None else 0.0
    has_evidence = bool(
        values["pdq_counterfeit_match"]
        or values["pdq_authentic_match"]
        or lookalike is not None
        or values["local_counterfeit_match"]
        or values["local_authentic_match"]
        or any(n.clip_match(min_match_similarity) for n in neighbours)
    )
    return Features(values, has_evidence, strongest, lookalike)
