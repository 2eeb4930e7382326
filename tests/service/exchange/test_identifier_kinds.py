"""Seller identifier kinds are a registry (service/exchange/identifier_kinds): every declared kind reaches the
listing form, the scan feed and the OpenAPI from its one module, and keys the same value the same way."""

from __future__ import annotations

import pytest

from service.api.schemas import ListingCheckForm
from service.app import create_app
from service.core.errors import InvalidInput
from service.exchange.identifier_kinds import IDENTIFIER_KINDS
from service.exchange.identifiers import keyed, normalise
from service.jobs.scans import FeedRow

SPELLINGS = {  # kind -> two spellings of one identifier, and a value that is none
    "email": ("Seller+shop1@Example.com", "seller@example.com", "not an address"),
    "phone": ("+49 151 1234 5678", "+4915112345678", "call me"),
    "payout_account": ("de89 3704-0044 0532.0130 00", "DE89370400440532013000", "x!"),
    "shop_url": ("https://www.Shop.example/Fakes/", "shop.example/fakes", "nohost"),
}


def test_every_kind_is_a_form_field_a_feed_column_and_in_the_openapi(settings):
    assert set(IDENTIFIER_KINDS) == set(SPELLINGS)  # a new kind gets its spellings here too
    form_fields = set(ListingCheckForm.model_fields)
    feed_columns = set(FeedRow.model_fields)
    schema = create_app(settings).openapi()["components"]["schemas"]
    form_schema = schema["ListingCheckForm"]
    for kind in IDENTIFIER_KINDS.values():
        assert kind.field in form_fields and kind.field in feed_columns
        documented = form_schema["properties"][kind.field]
        assert documented["description"] == kind.description
        assert FeedRow.model_fields[kind.field].metadata  # the length limit travels with it


@pytest.mark.parametrize("kind", sorted(SPELLINGS))
def test_each_kind_normalises_spellings_together_and_refuses_what_is_none(kind):
    first, second, invalid = SPELLINGS[kind]
    assert normalise(kind, first, "DE") == normalise(kind, second, "DE")
    keys = {"k1": b"a" * 32}
    assert keyed(kind, first, keys, "DE") == keyed(kind, second, keys, "DE")
    with pytest.raises(InvalidInput, match=IDENTIFIER_KINDS[kind].field):
        normalise(kind, invalid, "DE")
    with pytest.raises(InvalidInput, match="invisible"):
        normalise(kind, first + "\u202e", "DE")
