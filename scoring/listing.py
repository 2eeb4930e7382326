"""A listing's verdict from its photos' checks, its seller's record and its price.

* **Photos, by the kind of evidence each had** (``by-evidence``, the default):
  - *copy evidence of a fake* (a PDQ near-duplicate, verified keypoints or a distinct CLIP match to a
    counterfeit reference: a copy-regime photo at ``p ≥ 0.5``) and *exact copies of genuine photos*
    (PDQ or keypoints: the brand's own stock photos) are combined by **noisy-OR**, ``1 − Π (1 − p_i)``:
    the listing shows a counterfeit if *any* photo is a copy of one, and a genuine stock photo beside it
    changes nothing (sellers mix them with photos of what they ship);
  - every other photo with evidence — the brand's classifier on a new photo of the item, or a CLIP match
    to a genuine reference that is no exact copy — is an **observation of the one item** the listing
    sells: correlated with the others, not another chance to be fake. Their log-odds are averaged and
    the mean grows only slowly with their number, ``mean(logit p_i) × n^LOOKALIKE_POOLING``. Noisy-OR
    made four mildly fake-looking photos of one genuine shoe four chances to be fake and tipped genuine
    listings over (real photos: decided precision .667 at coverage .76 by noisy-OR, .914 at .44 so;
    docs/evaluation.md);
  - the two parts are combined by noisy-OR (a copy of a fake *or* a fake item).
  ``noisy-or`` (every photo alike) is kept for comparison: ``counterfeit eval`` reports both.
  Photos without evidence say nothing and are left out; a listing none of whose photos had evidence
  is ``inconclusive`` (0.5), whatever its seller's record — a seller's history alone does not make a
  photo counterfeit.
* **Seller risk** (0 … 1, ``service.marketplace.sellers``) adds ``SELLER_LOGIT × risk`` to the log-odds: a
  seller with confirmed counterfeits is more likely to be selling another.
* **Price**: below ``LOW_PRICE_RATIO`` of the matched product's ``reference_price`` (in the listing's
  currency, from the reference's metadata) adds ``PRICE_LOGIT``.

Each term that moved the log-odds is listed in the answer (``factors``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from scoring.scorers import NO_MATCH, Thresholds, decide, sigmoid

SELLER_LOGIT = 2.0
PRICE_LOGIT = 1.0
LOW_PRICE_RATIO = 0.5
# How the pooled look-alike log-odds grow with the number of photos: 0 is their mean (one observation,
# however many photos), 1 their sum (independent observations). Fitted by log loss on listings of 2–6
# real photos of one pair (../shared/data/sneakers-dev, `counterfeit eval --manifest`: the report's
# listings.fitted_pooling: 0.2–0.5 there, 1.0 on the generated look-alikes); see docs/evaluation.md.
LOOKALIKE_POOLING = 0.25
COPY_REGIMES = ("copy", "copy+lookalike")


@dataclass(frozen=True)
class PhotoOutcome:
    probability: float
    regime: str | None  # which evidence decided the photo's check (scoring.features.Features.regime)
    brand: str | None
    exact_copy: bool = False  # a PDQ near-duplicate or verified keypoints (not CLIP alone) matched

    @property
    def has_evidence(self) -> bool:
        return self.regime is not None

    @property
    def is_copy(self) -> bool:
        """Copy evidence the listing counts as "any photo": a copy of a fake, or an exact copy of a genuine
        photo (a stock photo, which says nothing about the item shipped)."""
        return self.regime in COPY_REGIMES and (self.probability >= 0.5 or self.exact_copy)


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
    aggregation: str = "by-evidence",
) -> ListingScore:
    """``seller_shared_by``: peers whose shared reports are part of the seller's risk (named in the factor);
    ``aggregation``: how the photos combine (:data:`AGGREGATIONS`)."""
    decided = [p for p in photos if p.has_evidence]
    brands = [p.brand for p in decided if p.brand] or [p.brand for p in photos if p.brand]
    brand = max(set(brands), key=brands.count) if brands else None
    if not decided:
        return ListingScore(NO_MATCH, 0.5, brand, [{"factor": "photos", "detail": "no photo had evidence"}])
    logit, detail = AGGREGATIONS[aggregation](decided)
    factors = [{"factor": "photos", "logit": round(logit, 4), "detail": detail}]
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


def _noisy_or(photos: Sequence[PhotoOutcome]) -> float:
    return 1 - math.prod(1 - p.probability for p in photos)


def noisy_or(photos: Sequence[PhotoOutcome]) -> tuple[float, str]:
    """Every photo an independent chance that the listing is counterfeit."""
    combined = _noisy_or(photos)
    return _logit(
        combined
    ), f"noisy-OR of {len(photos)} photo(s) with evidence: 1 - prod(1 - p_i) = {combined:.4f}"


def by_evidence(photos: Sequence[PhotoOutcome], pooling: float = LOOKALIKE_POOLING) -> tuple[float, str]:
    """Copies by noisy-OR, observations of the item pooled as correlated ones (module docstring)."""
    copies = [p for p in photos if p.is_copy]
    lookalikes = [p for p in photos if not p.is_copy]
    parts, details = [], []
    if copies:
        parts.append(_noisy_or(copies))
        details.append(f"copy evidence: noisy-OR of {len(copies)} photo(s) = {parts[-1]:.4f}")
    if lookalikes:
        pooled = pooled_logit([p.probability for p in lookalikes], pooling)
        parts.append(sigmoid(pooled))
        details.append(
            f"the item's look: mean log-odds of {len(lookalikes)} photo(s) x {len(lookalikes)}^{pooling:g}"
            f" = {parts[-1]:.4f}"
        )
    combined = 1 - math.prod(1 - part for part in parts)
    return _logit(combined), "; ".join(details) + (f"; either: {combined:.4f}" if len(parts) > 1 else "")


def pooled_logit(probabilities: Sequence[float], pooling: float = LOOKALIKE_POOLING) -> float:
    """Correlated observations of one item: the mean log-odds, grown by ``n^pooling``."""
    logits = [_logit(p) for p in probabilities]
    return sum(logits) / len(logits) * len(logits) ** pooling


AGGREGATIONS: dict[str, Callable[[Sequence[PhotoOutcome]], tuple[float, str]]] = {
    "by-evidence": by_evidence,
    "noisy-or": noisy_or,
}
