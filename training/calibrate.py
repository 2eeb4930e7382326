"""Fit a calibrated scorer from labelled outcomes: a versioned :class:`scoring.calibration.CalibrationArtefact`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from scoring.calibration import CalibrationArtefact
from scoring.features import FEATURE_NAMES
from scoring.scorers import Thresholds
from training.metrics import expected_calibration_error


def choose_thresholds(
    probabilities: np.ndarray, labels: np.ndarray, target_precision: float = 0.95
) -> Thresholds:
    """Loosest cut-offs whose calls still reach ``target_precision``: counterfeit calls among p ≥ t are
    fakes at that rate, authentic calls among p ≤ t are genuine at that rate. Ties stay conservative."""
    probabilities, labels = np.asarray(probabilities, float), np.asarray(labels, int)
    counterfeit, authentic = 1.0, 0.0
    for t in np.unique(probabilities)[::-1]:
        called = probabilities >= t
        if labels[called].mean() >= target_precision:
            counterfeit = float(t)
        else:
            break
    for t in np.unique(probabilities):
        called = probabilities <= t
        if (1 - labels[called]).mean() >= target_precision:
            authentic = float(t)
        else:
            break
    if authentic >= counterfeit:  # degenerate data: keep a gap
        authentic = min(authentic, counterfeit - 1e-6)
    return Thresholds(counterfeit=max(counterfeit, 0.5), authentic=min(authentic, 0.5))


def fit_calibration(
    features: Sequence[Sequence[float]],
    labels: Sequence[int],
    model_fingerprint: str,
    target_precision: float = 0.95,
    regularisation: float = 1.0,
) -> CalibrationArtefact:
    """Logistic regression (Platt-style, so its outputs are probabilities) on the evidence features."""
    from sklearn.linear_model import LogisticRegression

    x, y = np.asarray(features, dtype=float), np.asarray(labels, dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("calibration needs both confirmed counterfeits and confirmed authentic outcomes")
    # Standardise so the penalty treats features alike (similarity margins are ~0.05 wide, flags are 0/1),
    # then fold the scaling back into plain coefficients: the artefact stays one linear model.
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    model = LogisticRegression(C=regularisation, max_iter=1000).fit((x - mean) / std, y)
    coefficients = model.coef_[0] / std
    intercept = float(model.intercept_[0] - (coefficients * mean).sum())
    probabilities = 1 / (1 + np.exp(-(x @ coefficients + intercept)))
    thresholds = choose_thresholds(probabilities, y, target_precision)
    version = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return CalibrationArtefact(
        version=version,
        model_fingerprint=model_fingerprint,
        feature_names=FEATURE_NAMES,
        coefficients=tuple(float(c) for c in coefficients),
        intercept=intercept,
        thresholds={"counterfeit": thresholds.counterfeit, "authentic": thresholds.authentic},
        stats={
            "samples": int(len(y)),
            "counterfeit": int(y.sum()),
            "target_precision": target_precision,
            "train_ece": round(expected_calibration_error(probabilities, y), 4),
        },
    )


def brand_thresholds(
    artefact: CalibrationArtefact,
    features: Sequence[Sequence[float]],
    labels: Sequence[int],
    brands: Sequence[str | None],
    target_precision: float = 0.95,
    min_samples: int = 30,
) -> dict[str, Thresholds]:
    """Thresholds per brand with enough confirmed outcomes of both kinds (the others keep the global ones)."""
    scorer = artefact.scorer()
    probabilities = np.array([scorer.probability_of(x) for x in features])
    labels, brands = np.asarray(labels, int), np.asarray(brands, dtype=object)
    chosen = {}
    for brand in sorted({b for b in brands.tolist() if b}):
        mine = brands == brand
        if mine.sum() >= min_samples and 0 < labels[mine].sum() < mine.sum():
            chosen[brand] = choose_thresholds(probabilities[mine], labels[mine], target_precision)
    return chosen
