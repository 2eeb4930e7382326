"""Test purchases over HTTP: a confirmed counterfeit joins the bank and the seller's record as a confirmed fact."""

from __future__ import annotations

import json

import pytest

from tests.helpers import product_photo, resized_jpeg_copy
from tests.service.exchange.test_webhooks import Receiver, _wait
from tests.service.marketplace.test_complaints import _count, _register

ITEM = 11  # the photo of the item the test purchase received


def _record(client, photos=(ITEM,), **fields):
    data = {
        "platform": "default",
        "listing_id": "L-5",
        "marketplace": "mkt",
        "seller_id": "shop-z",
        "order_reference": "ORD-1",
        "ordered_on": "2026-11-20",
        "received_on": "2026-11-27",
        "outcome": "counterfeit_confirmed",
        "examiner_note": "Stitching and serial label wrong; materials not the brand's.",
        **fields,
    }
    data = {k: v for k, v in data.items() if v is not None}
    files = [
        ("images", (f"{i}.png", p if isinstance(p, bytes) else product_photo(p), "image/png"))
        for i, p in enumerate(photos)
    ]
    return client.post("/v1/test-purchases", data=data, files=files or None)


def test_a_confirmed_counterfeit_joins_the_bank_and_counts_as_a_confirmed_fact_for_the_seller(tenants):
    t = tenants
    receiver = Receiver()
    hook = t.platform_a.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["test_purchase.recorded", "seller.risk_raised"]}
    )
    assert hook.status_code == 201, hook.text
    recorded = _record(t.acme, share_signals="true")
    assert recorded.status_code == 201, recorded.text
    purchase = recorded.json()
    assert purchase["outcome"] == "counterfeit_confirmed" and len(purchase["reference_ids"]) == 1
    assert purchase["listing"]["listing_check_id"].startswith("lst_") and len(purchase["photos"]) == 1
    reference = t.acme.get(f"/v1/references/{purchase['reference_ids'][0]}").json()
    assert reference["label"] == "counterfeit" and reference["source"] == f"test_purchase:{purchase['id']}"
    assert reference["share_signals"] is True

    seller = t.platform_a.get("/v1/sellers/mkt/shop-z").json()
    assert seller["confirmed_counterfeit"] == 1 and seller["risk"] > 0.4, seller
    assert t.platform_b.get("/v1/sellers/mkt/shop-z").status_code == 404
    # The bank now knows the item: a re-upload of its photo on the platform is a known fake.
    check = t.platform_a.post(
        "/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(ITEM), "image/jpeg")}, data={"brand": "acme"}
    ).json()
    assert check["verdict"] == "likely_counterfeit"
    assert check["evidence"][0]["reference_id"] == reference["id"]
    _wait(lambda: len(receiver.accepted()) == 2)
    events = {e["event"]: e["data"] for e in (json.loads(r[1]) for r in receiver.accepted())}
    assert events["test_purchase.recorded"]["test_purchase_id"] == purchase["id"]
    raised = events["seller.risk_raised"]  # a confirmed fact: the risk it leaves, as the record says
    assert raised["risk_before"] == 0.0 and raised["risk_after"] == seller["risk"], raised

    # The same order again: the first record (a retry), or a conflict when the outcome differs.
    again = _record(t.acme)
    assert again.status_code == 200 and again.json()["id"] == purchase["id"]
    other = _record(t.acme, photos=(), outcome="genuine")
    assert other.status_code == 409 and other.json()["error"]["code"] == "duplicate_order"
    assert t.platform_a.get("/v1/sellers/mkt/shop-z").json()["confirmed_counterfeit"] == 1

    # Visible to the brand and the platform; another brand or platform cannot tell it exists.
    assert t.platform_a.get(f"/v1/test-purchases/{purchase['id']}").status_code == 200
    assert t.globex.get(f"/v1/test-purchases/{purchase['id']}").status_code == 404
    assert t.platform_b.get(f"/v1/test-purchases/{purchase['id']}").status_code == 404
    assert t.globex.get("/v1/test-purchases").json()["items"] == []


def test_a_platform_records_a_genuine_purchase_for_a_brand_without_raising_anything(tenants):
    t = tenants
    genuine = _record(t.platform_a, platform=None, brand="acme", outcome="genuine", order_reference="ORD-2")
    assert genuine.status_code == 201, genuine.text
    body = genuine.json()
    assert (
        body["reference_ids"] == []
        and body["listing"]["listing_check_id"] is None
        and len(body["photos"]) == 1
    )
    assert t.platform_a.get("/v1/sellers/mkt/shop-z").status_code == 404
    assert [p["id"] for p in t.acme.get("/v1/test-purchases").json()["items"]] == [body["id"]]
    missing = _record(
        t.platform_a, photos=(), platform=None, brand="acme", outcome="not_delivered", received_on=None
    )
    assert missing.status_code == 201, missing.text
    assert (
        t.acme.get("/v1/test-purchases", params={"outcome": "not_delivered"}).json()["items"][0]["id"]
        == (missing.json()["id"])
    )


@pytest.mark.parametrize(
    "fields, photos, status, code",
    [
        ({"outcome": "not_delivered", "received_on": None}, (ITEM,), 422, "not_delivered"),
        ({}, (), 422, "evidence_required"),
        ({"received_on": "2026-11-01"}, (ITEM,), 422, "invalid_dates"),
        ({"ordered_on": "2099-01-01", "received_on": "2099-01-02"}, (ITEM,), 422, "invalid_dates"),
        (
            {},
            (ITEM, b"not an image"),
            422,
            "not_an_image",
        ),  # one bad photo: the good one is not registered either
        ({}, (12, ITEM), 409, None),  # already acme's authentic reference
        ({"brand": "globex"}, (ITEM,), 403, "other_brand"),
        ({"platform": "nowhere"}, (ITEM,), 422, "unknown_platform"),
        ({"platform": None}, (ITEM,), 422, "platform_required"),
        ({"seller_email": "x@example.com"}, (ITEM,), 422, "no_consortium_key"),
    ],
)
def test_a_bad_test_purchase_is_refused_and_writes_nothing(tenants, fields, photos, status, code):
    t = tenants
    _register(t.admin, 12, label="authentic")
    tables = ("test_purchases", "evidence_photos", "reference_images", "listings", "webhook_deliveries")
    before = {table: _count(t.settings, table) for table in tables}
    response = _record(t.acme, photos=photos, **fields)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"]["code"] == code
    assert {table: _count(t.settings, table) for table in tables} == before
