"""Listing aggregation by evidence type (scoring.listing): copies combine as "any photo is a copy",
look-alike photos of one item as correlated observations; seller and price move the log-odds."""

from __future__ import annotations

import pytest

from scoring.listing import LOOKALIKE_POOLING, PhotoOutcome, pooled_logit, score_listing
from scoring.scorers import INCONCLUSIVE, LIKELY_AUTHENTIC, LIKELY_COUNTERFEIT, NO_MATCH, Thresholds, sigmoid

THRESHOLDS = Thresholds(0.7, 0.3)


def _look(p: float) -> PhotoOutcome:
    return PhotoOutcome(p, "lookalike", "nike")


def test_four_mildly_fake_looking_photos_of_one_item_stay_mild_where_noisy_or_tipped_them_over():
    photos = [_look(0.55)] * 4
    pooled = score_listing(photos, THRESHOLDS)
    assert pooled.probability == pytest.approx(sigmoid(pooled_logit([0.55] * 4)), abs=1e-6)
    assert pooled.probability < 0.7 and pooled.verdict == INCONCLUSIVE
    assert score_listing(photos, THRESHOLDS, aggregation="noisy-or").verdict == LIKELY_COUNTERFEIT  # 0.96


def test_agreeing_look_alike_photos_grow_more_sure_but_slower_than_independent_ones():
    one = score_listing([_look(0.8)], THRESHOLDS).probability
    four = score_listing([_look(0.8)] * 4, THRESHOLDS).probability
    assert one == pytest.approx(0.8, abs=1e-6)
    assert one < four < score_listing([_look(0.8)] * 4, THRESHOLDS, aggregation="noisy-or").probability
    assert 0 < LOOKALIKE_POOLING < 1
    # Disagreeing photos of one item cancel out instead of the fake-looking one deciding.
    assert score_listing([_look(0.9), _look(0.1)], THRESHOLDS).probability == pytest.approx(0.5, abs=1e-6)


def test_one_copy_of_a_known_fake_decides_beside_genuine_looking_photos_and_a_genuine_stock_photo():
    stock = PhotoOutcome(0.02, "copy", "nike", exact_copy=True)  # the brand's own photo, re-uploaded
    photos = [PhotoOutcome(0.98, "copy", "nike"), stock, _look(0.2), _look(0.3)]
    listing = score_listing(photos, THRESHOLDS)
    assert listing.verdict == LIKELY_COUNTERFEIT and listing.probability >= 0.98
    assert "copy evidence: noisy-OR of 2" in listing.factors[0]["detail"]
    # A stock photo says nothing about the item shipped: three fake-looking photos beside it still count.
    looks = [_look(0.85)] * 3
    assert score_listing([stock, *looks], THRESHOLDS).probability == pytest.approx(
        score_listing(looks, THRESHOLDS).probability, abs=0.03
    )
    genuine = score_listing([stock, _look(0.2), _look(0.1)], THRESHOLDS)
    assert genuine.verdict == LIKELY_AUTHENTIC


def test_a_clip_match_to_a_genuine_photo_is_an_observation_of_the_item_not_a_stock_photo():
    # CLIP alone matched a genuine reference (no PDQ, no keypoints): a new photo that looks genuine.
    looks_genuine = PhotoOutcome(0.1, "copy", "nike")
    assert not looks_genuine.is_copy
    mixed = score_listing([looks_genuine, _look(0.8)], THRESHOLDS)
    assert mixed.probability == pytest.approx(sigmoid(pooled_logit([0.1, 0.8])), abs=1e-6)
    assert mixed.verdict == INCONCLUSIVE


def test_photos_without_evidence_say_nothing_and_seller_and_price_add_log_odds():
    nothing = score_listing([PhotoOutcome(0.5, None, None)] * 3, THRESHOLDS, seller_risk=1.0)
    assert (nothing.verdict, nothing.probability) == (NO_MATCH, 0.5)
    base = score_listing([_look(0.6), PhotoOutcome(0.5, None, None)], THRESHOLDS)
    assert base.probability == pytest.approx(0.6, abs=1e-6)
    risky = score_listing([_look(0.6)], THRESHOLDS, seller_risk=0.5, price=20.0, reference_price=100.0)
    assert [f["factor"] for f in risky.factors] == ["photos", "seller_risk", "low_price"]
    assert risky.probability == pytest.approx(sigmoid(pooled_logit([0.6]) + 1.0 + 1.0), abs=1e-6)
