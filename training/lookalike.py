"""Fit a brand's look-alike classifier (``scoring.lookalike.BrandProbe``) on its two banks' embeddings.

A logistic regression on the frozen embeddings — a linear probe — with the regularisation chosen by
stratified cross-validation, then Platt-scaled on *cross-validated* decision values, so its
probability of a photo it has not seen is as confident as it was on held-out references, not on its
own training points. It abstains (returns the reason) when a bank is too small or the held-out
accuracy says the banks cannot be told apart: a brand then gets copy matching only, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from scoring.lookalike import BrandProbe

GATE_PERCENTILE = 2.0  # of the references' leave-one-out nearest similarities: a query must be as close


@dataclass(frozen=True)
class Abstained:
    brand: str
    reason: str
    counts: dict[str, int]


def fit_brand_probe(brand: str, vectors: np.ndarray, labels: np.ndarray, model_fingerprint: str,
                    min_per_bank: int = 8, min_cv_auc: float = 0.8, trained_through_seq: int = 0,
                    seed: int = 0) -> BrandProbe | Abstained:
    """``labels``: 1 for the counterfeit bank, 0 for the authentic bank; ``vectors`` as the index stores them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x, y = np.asarray(vectors, dtype=np.float64), np.asarray(labels, dtype=int)
    counts = {"authentic": int((y == 0).sum()), "counterfeit": int((y == 1).sum())}
    if min(counts.values()) < min_per_bank:
        return Abstained(brand, f"too few references: {counts['authentic']} authentic and {counts['counterfeit']} "
                                f"counterfeit, {min_per_bank} of each are needed", counts)
    folds = StratifiedKFold(n_splits=min(5, min(counts.values())), shuffle=True, random_state=seed)
    mean = x.mean(axis=0)
    centred = x - mean  # the banks' own centre: the penalty then shrinks towards "no preference"
    best = None
    for c in (0.01, 0.1, 1.0, 10.0, 100.0):  # cross-validated regularisation (log-loss of held-out references)
        held_out = cross_val_predict(LogisticRegression(C=c, max_iter=2000), centred, y, cv=folds,
                                     method="decision_function")
        loss = _log_loss(held_out, y)
        if best is None or loss < best[0]:
            best = (loss, c, held_out)
    _, c, held_out = best
    cv_auc = float(roc_auc_score(y, held_out))
    if cv_auc < min_cv_auc:
        return Abstained(brand, f"the banks are not separable enough: cross-validated ROC-AUC {cv_auc:.3f} "
                                f"< {min_cv_auc}", counts)
    # Platt scaling on the held-out decision values: logit = a·d + b is calibrated for unseen photos.
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(held_out[:, None], y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    cv_accuracy = float(((a * held_out + b > 0).astype(int) == y).mean())
    model = LogisticRegression(C=c, max_iter=2000).fit(centred, y)
    weights = a * model.coef_[0]
    intercept = a * (float(model.intercept_[0]) - float(model.coef_[0] @ mean)) + b
    return BrandProbe(
        brand=brand, model_fingerprint=model_fingerprint,
        version=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ"),
        coefficients=tuple(float(w) for w in weights), intercept=float(intercept), gate=_gate(x),
        cv_accuracy=round(cv_accuracy, 4), cv_auc=round(cv_auc, 4), counts=counts,
        trained_through_seq=trained_through_seq,
    )


def _gate(x: np.ndarray) -> float:
    """A low percentile of each reference's similarity to its nearest other reference of the brand."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarities = unit @ unit.T
    np.fill_diagonal(similarities, -np.inf)
    return float(np.percentile(similarities.max(axis=1), GATE_PERCENTILE))


def _log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    # Platt-free log-loss of raw decision values is enough to rank regularisations.
    return float(np.mean(np.logaddexp(0, -logits * (2 * y - 1))))
