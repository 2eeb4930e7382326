"""Seller identifiers keyed as a domain service (no HTTP): one digest per consortium key during a rotation,
the same digest for the same seller written differently, and a listing that cannot be keyed is refused."""

from __future__ import annotations

import pytest

from service.core.errors import InvalidInput
from service.exchange.identifiers import IdentifierKeying
from service.marketplace.listings import ListingChecker, ListingFacts


def _listings(keying: IdentifierKeying) -> ListingChecker:
    return ListingChecker(
        sessions=None, checker=None, registry=None, sellers=None, thresholds=None, keying=keying
    )


def test_a_rotation_keys_each_identifier_under_every_key_and_normalises_first():
    keying = IdentifierKeying({"2026a": b"a" * 32, "2026b": b"b" * 32}, default_phone_region="GB")
    digests = keying.key("email", "Seller+shop1@Example.com")
    assert [d.key_id for d in digests] == ["2026a", "2026b"] and len({d.digest for d in digests}) == 2
    assert digests == keying.key("email", "seller@example.com")
    assert keying.key("phone", "020 7946 0018") == keying.key("phone", "+44 20 7946 0018")
    assert IdentifierKeying({"2026b": b"b" * 32}).key("email", "seller@example.com") == digests[1:]


def test_a_listing_that_cannot_be_keyed_is_refused():
    facts = ListingFacts("l1", "s1", "shop-a", identifiers={"email": "seller@example.com"})
    with pytest.raises(InvalidInput) as refused:
        _listings(IdentifierKeying()).key_identifiers(facts)
    assert refused.value.code == "no_consortium_key"
    keyed = _listings(IdentifierKeying({"k": b"k" * 32}))
    assert [k.kind for k in keyed.key_identifiers(facts)] == ["email"]
    with pytest.raises(InvalidInput) as refused:
        keyed.key_identifiers(ListingFacts("l1", None, None, identifiers={"email": "seller@example.com"}))
    assert refused.value.code == "seller_required"
    with pytest.raises(InvalidInput) as refused:
        keyed.key_identifiers(ListingFacts("l1", "s1", None))
    assert refused.value.code == "marketplace_required"
