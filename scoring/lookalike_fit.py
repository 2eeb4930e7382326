"""Fit a brand's look-alike classifier (``scoring.lookalike.BrandProbe``) on its two banks' embeddings.

Two logistic regressions on the frozen embeddings — linear probes — each with its regularisation
chosen by cross-validation grouped by reference (a reference's region vectors never sit on both sides
of a fold, or held-out scores would flatter):

* **the probe**: counterfeit bank vs authentic bank, on every stored vector of the brand's references
  (the whole photo and its regions: six views of a product instead of one), then Platt-scaled on
  *cross-validated* decision values, so its probability of a photo it has not seen is as confident as
  it was on held-out references, not on its own training points;
* **the membership model**: the brand's references vs ``negatives`` (other brands' references and the
  model's background images). A probe only knows fakes from genuine items of *this* brand; a product
  of a brand that registered nothing is neither, and a probe forced to answer picks a side at random.
  Its gate is a low percentile of the brand's held-out references' membership scores, raised where
  needed to the 99.5th percentile of the held-out *other products'* scores: a query must look at least
  that much like the brand's products, and score above 199 in 200 other products, before the probe is
  asked. Similarity to the nearest reference could not do this: products of other brands
  photographed the same way are as similar to a brand's references as its own new photos are
  (measured: 0.29 of unrelated products kept ``inconclusive`` with a similarity gate, 0.85–0.96 with
  this one).

It abstains (returns the reason) when a bank is too small, there are no negatives, or the held-out
accuracy says the banks cannot be told apart: a brand then gets copy matching only, never a guess.

A probe that is fitted still abstains on the photos it cannot judge well enough: from its held-out
calibrated probabilities it finds the probability at or above which "counterfeit" was right at least
``min_precision`` of the time (and the one at or below which "authentic" was), and decides only beyond
them (``BrandProbe.decides_counterfeit_at`` / ``decides_authentic_at``; ``decided_share`` is the share of
held-out references they decide: the coverage this honesty leaves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from scoring.lookalike import BrandProbe

MEMBERSHIP_GATE_PERCENTILE = 20.0  # of held-out references' membership scores: a query must score as high
OTHER_PRODUCTS_GATE_PERCENTILE = 99.5  # of held-out other products' scores: the gate is at least this high
MAX_NEGATIVES = 3000  # other brands' vectors per fit
REGULARISATIONS = (0.01, 0.1, 1.0, 10.0, 100.0)
# Thousands of negatives against one brand: only weak penalties are worth trying (the strong ones
# never won, and each try is a cross-validated fit on the largest matrix of the job).
MEMBERSHIP_REGULARISATIONS = (1.0, 10.0, 100.0)
# 4: decides only beyond its held-out precision bounds; 3: the gate also clears other products;
# 2: own references only; 1: a similarity gate.
PROBE_FORMAT = 4


@dataclass(frozen=True)
class Abstained:
    brand: str
    reason: str
    counts: dict[str, int]


def fit_brand_probe(
    brand: str,
    vectors: np.ndarray,
    labels: np.ndarray,
    model_fingerprint: str,
    *,
    groups: np.ndarray | None = None,
    negatives: np.ndarray | None = None,
    min_per_bank: int = 8,
    min_cv_auc: float = 0.8,
    min_precision: float = 0.9,
    trained_through_seq: int = 0,
    seed: int = 0,
) -> BrandProbe | Abstained:
    """``vectors``: the brand's stored vectors (a reference may give several: its whole image and regions);
    ``labels``: 1 for the counterfeit bank, 0 for the authentic bank, per row; ``groups``: the reference
    each row belongs to (None: one row per reference); ``negatives``: vectors of images that are not the
    brand's products."""
    from sklearn.metrics import roc_auc_score

    x, y = np.asarray(vectors, dtype=np.float64), np.asarray(labels, dtype=int)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    counts = _bank_sizes(groups, y)
    unfit = _unfit(brand, counts, negatives, min_per_bank)
    if unfit is not None:
        return unfit
    folds = min(5, min(counts.values()))
    mean = x.mean(axis=0)
    centred = x - mean  # the banks' own centre: the penalty then shrinks towards "no preference"
    c, held_out = _cross_validated(centred, y, groups, folds, seed, class_weight=None)
    cv_auc = float(roc_auc_score(y, held_out))
    if cv_auc < min_cv_auc:
        return Abstained(
            brand,
            f"the banks are not separable enough: cross-validated ROC-AUC {cv_auc:.3f} < {min_cv_auc}",
            counts,
        )
    weights, intercept, cv_accuracy, held_out_p = _calibrated_direction(centred, y, held_out, c, mean)
    counterfeit_at, authentic_at, decided = precise_bounds(held_out_p, y, min_precision)

    membership, gate = _membership(x, groups, negatives, folds, seed)
    return BrandProbe(
        brand=brand,
        model_fingerprint=model_fingerprint,
        version=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ"),
        coefficients=tuple(float(w) for w in weights),
        intercept=float(intercept),
        membership_coefficients=tuple(float(w) for w in membership.coef_[0]),
        membership_intercept=float(membership.intercept_[0]),
        membership_gate=gate,
        cv_accuracy=round(cv_accuracy, 4),
        cv_auc=round(cv_auc, 4),
        counts=counts,
        trained_through_seq=trained_through_seq,
        format=PROBE_FORMAT,
        decides_counterfeit_at=counterfeit_at,
        decides_authentic_at=authentic_at,
        decided_share=decided,
    )


def _unfit(brand: str, counts: dict[str, int], negatives, min_per_bank: int) -> Abstained | None:
    """Why no classifier can be fitted yet (too few references, no other products), or None."""
    if min(counts.values()) < min_per_bank:
        return Abstained(
            brand,
            f"too few references: {counts['authentic']} authentic and {counts['counterfeit']} "
            f"counterfeit, {min_per_bank} of each are needed",
            counts,
        )
    if negatives is None or len(negatives) == 0:
        return Abstained(brand, "no images of other products to learn what is not this brand's", counts)
    return None


def _bank_sizes(groups: np.ndarray, y: np.ndarray) -> dict[str, int]:
    """References (not rows: a reference may give several vectors) in each bank."""
    return {"authentic": len(set(groups[y == 0].tolist())), "counterfeit": len(set(groups[y == 1].tolist()))}


def _calibrated_direction(
    centred: np.ndarray, y: np.ndarray, held_out: np.ndarray, c: float, mean: np.ndarray
):
    """Counterfeit vs authentic as one direction in the embedding space, Platt-scaled on the held-out decision
    values (logit = a·d + b is calibrated for unseen photos): (weights, intercept, cross-validated accuracy,
    the held-out calibrated probabilities)."""
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e4, max_iter=1000).fit(held_out[:, None], y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    cv_accuracy = float(((a * held_out + b > 0).astype(int) == y).mean())
    model = LogisticRegression(C=c, max_iter=2000).fit(centred, y)
    weights = a * model.coef_[0]
    intercept = a * (float(model.intercept_[0]) - float(model.coef_[0] @ mean)) + b
    return weights, intercept, cv_accuracy, 1 / (1 + np.exp(-(a * held_out + b)))


def precise_bounds(
    probabilities: np.ndarray, labels: np.ndarray, min_precision: float
) -> tuple[float, float, float]:
    """``(counterfeit_at, authentic_at, decided share)``: the lowest probability at or above which the
    held-out "counterfeit" calls were right at least ``min_precision`` of the time, the highest at or below
    which the "authentic" calls were, and the share of held-out rows beyond them. A side that never reaches
    the precision gets a bound nothing passes (above 1, below 0)."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(labels, dtype=int)
    order = np.argsort(-p)
    right = np.cumsum(y[order] == 1) / np.arange(1, len(p) + 1)  # precision of "counterfeit" from the top
    counterfeit_at = float(p[order][right >= min_precision].min()) if (right >= min_precision).any() else 1.01
    ascending = order[::-1]
    right = np.cumsum(y[ascending] == 0) / np.arange(
        1, len(p) + 1
    )  # precision of "authentic" from the bottom
    authentic_at = (
        float(p[ascending][right >= min_precision].max()) if (right >= min_precision).any() else -0.01
    )
    decided = float(np.mean((p >= counterfeit_at) | (p <= authentic_at)))
    return round(counterfeit_at, 6), round(authentic_at, 6), round(decided, 4)


def _membership(x: np.ndarray, groups: np.ndarray, negatives, folds: int, seed: int):
    """Is this photo of the brand's products at all: a classifier of the brand's references against other
    products, and the gate its score must pass."""
    from sklearn.linear_model import LogisticRegression

    negatives = np.asarray(negatives, dtype=np.float64)
    mx = np.concatenate([x, negatives])
    my = np.r_[np.ones(len(x), dtype=int), np.zeros(len(negatives), dtype=int)]
    mgroups = np.concatenate([groups.astype(np.int64), -1 - np.arange(len(negatives), dtype=np.int64)])
    mc, member_held_out = _cross_validated(
        mx, my, mgroups, folds, seed, class_weight="balanced", regularisations=MEMBERSHIP_REGULARISATIONS
    )
    membership = LogisticRegression(C=mc, max_iter=5000, class_weight="balanced").fit(mx, my)
    # The gate: as high as most of the brand's own held-out references score, and never below what 1 in 200
    # held-out other products reaches — where the brand's products and others overlap, precision wins.
    gate = max(
        float(np.percentile(member_held_out[my == 1], MEMBERSHIP_GATE_PERCENTILE)),
        float(np.percentile(member_held_out[my == 0], OTHER_PRODUCTS_GATE_PERCENTILE)),
    )
    return membership, gate


def probe_negatives(
    other_brands: np.ndarray, background: np.ndarray, limit: int = MAX_NEGATIVES, seed: int = 0
) -> np.ndarray:
    """Other brands' reference vectors (a random ``limit`` of them at most, so a fit's cost does not grow
    with the catalogue) and the model's background images."""
    if len(other_brands) > limit:
        other_brands = other_brands[
            np.random.default_rng(seed).choice(len(other_brands), limit, replace=False)
        ]
    return np.concatenate(
        [
            np.asarray(other_brands, np.float32).reshape(-1, background.shape[-1]),
            np.asarray(background, np.float32),
        ]
    )


def _cross_validated(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    folds: int,
    seed: int,
    class_weight: str | None,
    regularisations: tuple[float, ...] = REGULARISATIONS,
) -> tuple[float, np.ndarray]:
    """The regularisation with the lowest held-out log-loss, and its held-out decision values."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    best = None
    for c in regularisations:
        held_out = cross_val_predict(
            LogisticRegression(C=c, max_iter=5000, class_weight=class_weight),
            x,
            y,
            groups=groups,
            cv=splitter,
            method="decision_function",
        )
        loss = _log_loss(held_out, y)
        if best is None or loss < best[0]:
            best = (loss, c, held_out)
    return best[1], best[2]


def _log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    # Platt-free log-loss of raw decision values is enough to rank regularisations.
    return float(np.mean(np.logaddexp(0, -logits * (2 * y - 1))))
