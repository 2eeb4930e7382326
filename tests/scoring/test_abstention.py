"""Honest abstention in the look-alike regime (scoring.lookalike_fit.precise_bounds, scoring.scorers.honest):
the classifier decides only where its held-out verdicts reached the precision a platform acts on."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.lookalike import LookAlike
from scoring.lookalike_fit import precise_bounds
from scoring.scorers import Thresholds, honest


def test_bounds_sit_where_held_out_verdicts_reach_the_precision():
    # Held-out probabilities: the top four are fakes, then a genuine one among fakes, the bottom three genuine.
    p = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.65, 0.6, 0.4, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0])
    counterfeit_at, authentic_at, decided = precise_bounds(p, y, 0.9)
    assert counterfeit_at == 0.8  # the top 5 would be 4/5 = 0.8 right; the top 4 are all right
    assert authentic_at == 0.2  # the bottom 3 are all right; the bottom 4 are 3/4
    assert decided == pytest.approx(7 / 11, abs=1e-4)
    loose = precise_bounds(p, y, 0.6)
    assert loose[0] < counterfeit_at and loose[1] > authentic_at and loose[2] > decided


def test_a_side_that_never_reaches_the_precision_never_decides():
    p = np.array([0.9, 0.8, 0.3, 0.2])
    y = np.array([0, 1, 1, 0])  # the most fake-looking is genuine, the least is genuine too
    counterfeit_at, authentic_at, _ = precise_bounds(p, y, 0.9)
    assert counterfeit_at > 1.0 and authentic_at == 0.2


def test_only_bounds_beyond_the_brands_thresholds_change_them():
    def probe(counterfeit_at, authentic_at):
        return LookAlike("acme", "v", 0.5, 0.0, 0.1, 0.9, 0.9, {}, counterfeit_at, authentic_at, 0.5)

    brand = Thresholds(0.7, 0.3)
    assert honest(brand, probe(0.85, 0.1)) == Thresholds(0.85, 0.1)
    assert honest(brand, probe(0.6, 0.4)) == brand  # never nearer the middle than the brand asked
    assert honest(brand, probe(0.0, 1.0)) == brand  # a classifier fitted before the bounds existed
