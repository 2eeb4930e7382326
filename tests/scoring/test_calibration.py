"""Calibrated scoring: better calibrated than the default, reproducible, bound to its model."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.calibration import CalibrationArtefact, CalibrationMismatch, CalibrationStore
from scoring.features import Neighbour, compute_features
from scoring.scorers import MarginScorer
from training.calibrate import choose_thresholds, fit_calibration
from training.metrics import expected_calibration_error, micro_average_precision

MIN_MATCH = 0.85


def synthetic_outcomes(n: int, seed: int):
    """Checks whose evidence is informative but noisy: 25 % of the labels contradict their evidence."""
    rng = np.random.default_rng(seed)
    features, labels = [], []
    for _ in range(n):
        fake = rng.random() < 0.5
        c, a = rng.normal(0.95 if fake else 0.86, 0.04), rng.normal(0.86 if fake else 0.95, 0.04)
        neighbours = [
            Neighbour(1, "acme", "counterfeit", None, float(c), None),
            Neighbour(2, "acme", "authentic", None, float(a), None),
        ]
        features.append(compute_features(neighbours, None, MIN_MATCH))
        labels.append(int(fake != (rng.random() < 0.25)))
    return features, np.array(labels)


def test_fitted_scorer_is_better_calibrated_than_the_default(tmp_path):
    train_features, train_labels = synthetic_outcomes(1500, seed=1)
    test_features, test_labels = synthetic_outcomes(1500, seed=2)
    artefact = fit_calibration([f.vector() for f in train_features], train_labels, model_fingerprint="fp-a")
    default = MarginScorer(MIN_MATCH, temperature=0.05)
    default_ece = expected_calibration_error([default.probability(f) for f in test_features], test_labels)
    fitted_ece = expected_calibration_error(
        [artefact.scorer().probability(f) for f in test_features], test_labels
    )
    assert fitted_ece < default_ece and fitted_ece < 0.05, (fitted_ece, default_ece)

    path = tmp_path / "calibration.json"
    artefact.save(path)
    reloaded = CalibrationArtefact.load(path, "fp-a")
    assert [reloaded.scorer().probability(f) for f in test_features] == [
        artefact.scorer().probability(f) for f in test_features
    ]
    assert reloaded.scorer().name == f"calibrated-{artefact.version}"
    with pytest.raises(CalibrationMismatch, match="fp-b"):
        CalibrationArtefact.load(path, "fp-b")
    store = CalibrationStore(tmp_path / "store")
    store.save_and_activate(artefact)
    assert store.load_active("fp-a").version == artefact.version
    with pytest.raises(CalibrationMismatch):
        store.load_active("fp-other")


def test_thresholds_reach_the_target_precision():
    rng = np.random.default_rng(0)
    probabilities = rng.random(4000)
    labels = (rng.random(4000) < probabilities).astype(int)  # perfectly calibrated
    thresholds = choose_thresholds(probabilities, labels, target_precision=0.9)
    called_fake, called_genuine = (
        probabilities >= thresholds.counterfeit,
        probabilities <= thresholds.authentic,
    )
    assert labels[called_fake].mean() >= 0.9 and (1 - labels[called_genuine]).mean() >= 0.9
    assert 0.6 < thresholds.counterfeit < 0.95 and 0.05 < thresholds.authentic < 0.4


def test_micro_average_precision_counts_missed_pairs():
    assert micro_average_precision([(0.9, True), (0.8, True)], positives=2) == 1.0
    assert micro_average_precision([(0.9, True), (0.8, False), (0.7, True)], positives=4) == pytest.approx(
        (1 + 2 / 3) / 4
    )
