"""A listing's verdict from its photos' checks, its seller's record and its price.

* **Photos: noisy-OR.** A listing is counterfeit if *any* of its photos shows a counterfeit (sellers
  mix genuine stock photos with photos of what they ship), so with ``p_i`` the counterfeit
  probability of each photo that had evidence, ``P = 1 − Π (1 − p_i)``. Photos without evidence say
  nothing and are left out; a listing none of whose photos had evidence is ``inconclusive`` (0.5),
  whatever its seller's record — a seller's history alone does not make a photo counterfeit.
* **Seller risk** (0 … 1, ``service.marketplace.sellers``) adds ``SELLER_LOGIT × risk`` to the log-odds: a
  seller with confirmed counterfeits is more likely to be selling another.
* **Price**: below ``LOW_PRICE_RATIO`` of the matched product's ``reference_price`` (in the listing's
  currency, from the reference's metadata) adds ``PRICE_LOGIT``.

Each term that moved the log-odds is listed in the answer (``factors``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scoring.scorers import INCONCLUSIVE, Thresholds, decide, sigmoid

SELLER_LOGIT = 2.0
PRICE_LOGIT = 1.0
LOW_PRICE_RATIO = 0.5


@dataclass(frozen=True)
class PhotoOutcome:
    probability: float
    has_evidence: bool
    brand: str | None


@dataclass(frozen=True)
class ListingScore:
    verdict: str
    probability: float
    brand: str | None
    factors: list[dict]


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def score_listing(
    photos: Sequence[PhotoOutcome],
    thresholds: Thresholds,
    seller_risk: float | None = None,
    price: float | None = None,
    reference_price: float | None = None,
    seller_shared_by: Sequence[str] = (),
) -> ListingScore:
    """``seller_shared_by``: peers whose shared reports are part of the seller's risk (named in the factor)."""
    decided = [p for p in photos if p.has_evidence]
    brands = [p.brand for p in decided if p.brand] or [p.brand for p in photos if p.brand]
    brand = max(set(brands), key=brands.count) if brands else None
    if not decided:
        return ListingScore(
            INCONCLUSIVE, 0.5, brand, [{"factor": "photos", "detail": "no photo had evidence"}]
        )
    clean = math.prod(1 - p.probability for p in decided)
    logit = _logit(1 - clean)
    factors = [
        {
            "factor": "photos",
            "logit": round(logit, 4),
            "detail": f"noisy-OR of {len(decided)} photo(s) with evidence: 1 - prod(1 - p_i) = {1 - clean:.4f}",
        }
    ]
    if seller_risk:
        logit += SELLER_LOGIT * seller_risk
        factors.append(
            {
                "factor": "seller_risk",
                "logit": round(SELLER_LOGIT * seller_risk, 4),
                "detail": f"the seller's risk {seller_risk:.3f} x {SELLER_LOGIT}"
                + (
                    f" (includes reports shared_by: {', '.join(seller_shared_by)})"
                    if seller_shared_by
                    else ""
                ),
            }
        )
    if price is not None and reference_price and price < LOW_PRICE_RATIO * reference_price:
        logit += PRICE_LOGIT
        factors.append(
            {
                "factor": "low_price",
                "logit": PRICE_LOGIT,
                "detail": f"price {price:g} is below {LOW_PRICE_RATIO:g} x the reference price {reference_price:g}",
            }
        )
    probability = round(sigmoid(logit), 6)
    return ListingScore(decide(probability, thresholds), probability, brand, factors)
