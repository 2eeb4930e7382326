"""Fit a calibrated scorer from labelled outcomes and save it as a versioned artefact.

The artefact is a small JSON file: logistic-regression coefficients over
:data:`training.features.FEATURE_NAMES`, the model fingerprint it was fitted for (features of
another embedding model mean something else, so loading it for another fingerprint is refused),
decision thresholds chosen for a target precision, and fit statistics.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from index.atomic import atomic_writer
from training.features import FEATURE_NAMES
from training.metrics import expected_calibration_error
from training.scoring import CalibratedScorer, Thresholds


class CalibrationMismatch(ValueError):
    pass


@dataclass(frozen=True)
class CalibrationArtefact:
    version: str
    model_fingerprint: str
    feature_names: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    thresholds: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)

    def scorer(self) -> CalibratedScorer:
        return CalibratedScorer(self.version, self.coefficients, self.intercept)

    def save(self, path: Path) -> None:
        with atomic_writer(Path(path), "w") as handle:
            json.dump(asdict(self), handle, indent=2)

    @classmethod
    def load(cls, path: Path, model_fingerprint: str) -> "CalibrationArtefact":
        data = json.loads(Path(path).read_text())
        artefact = cls(**{**data, "feature_names": tuple(data["feature_names"]), "coefficients": tuple(data["coefficients"])})
        if artefact.model_fingerprint != model_fingerprint:
            raise CalibrationMismatch(
                f"calibration {artefact.version} was fitted for model fingerprint {artefact.model_fingerprint}, "
                f"not {model_fingerprint}; refit it (`counterfeit train calibrate`) for the current model")
        if artefact.feature_names != FEATURE_NAMES:
            raise CalibrationMismatch(f"calibration {artefact.version} uses other features: {artefact.feature_names}")
        return artefact


def choose_thresholds(probabilities: np.ndarray, labels: np.ndarray, target_precision: float = 0.95) -> Thresholds:
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


def fit_calibration(features: Sequence[Sequence[float]], labels: Sequence[int], model_fingerprint: str,
                    target_precision: float = 0.95, regularisation: float = 1.0) -> CalibrationArtefact:
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
        version=version, model_fingerprint=model_fingerprint, feature_names=FEATURE_NAMES,
        coefficients=tuple(float(c) for c in coefficients), intercept=intercept,
        thresholds={"counterfeit": thresholds.counterfeit, "authentic": thresholds.authentic},
        stats={"samples": int(len(y)), "counterfeit": int(y.sum()), "target_precision": target_precision,
               "train_ece": round(expected_calibration_error(probabilities, y), 4)},
    )


def brand_thresholds(artefact: CalibrationArtefact, features: Sequence[Sequence[float]], labels: Sequence[int],
                     brands: Sequence[str | None], target_precision: float = 0.95,
                     min_samples: int = 30) -> dict[str, Thresholds]:
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
