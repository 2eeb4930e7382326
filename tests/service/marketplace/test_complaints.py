"""Complaints over HTTP: a brand files, triage picks the lane, the platform decides, a counter-notice reopens.

Real app, real database, real photos through the real check path; webhooks to a real receiver on loopback.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.helpers import product_photo, resized_jpeg_copy, sql
from tests.service.exchange.test_webhooks import Receiver, _wait

FAKE, UNRELATED = 1, 7


def _register(client, seed: int, brand: str = "acme", label: str = "counterfeit") -> int:
    response = client.post(
        "/v1/references",
        data={"brand": brand, "label": label},
        files={"image": (f"{seed}.png", product_photo(seed), "image/png")},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _file(client, seeds=(FAKE,), **fields):
    data = {
        "platform": "default",
        "claim": "counterfeit",
        "statement": "This listing sells fakes of our bag.",
        "listing_id": "L-77",
        "marketplace": "mkt",
        "seller_id": "shop-x",
        **fields,
    }
    files = [("images", (f"{i}.jpg", resized_jpeg_copy(seed), "image/jpeg")) for i, seed in enumerate(seeds)]
    return client.post("/v1/complaints", data=data, files=files or None)


def _hook(client, receiver) -> None:
    events = ["complaint.filed", "complaint.fast_tracked", "complaint.decided", "complaint.reopened"]
    response = client.post("/v1/webhooks", json={"url": receiver.url, "events": events})
    assert response.status_code == 201, response.text


def _events(receiver) -> list[tuple[str, str]]:
    return [
        (body["event"], body["data"]["complaint_id"])
        for body in (json.loads(raw) for _, raw, _ in receiver.accepted())
    ]


def _count(settings, table: str) -> int:
    return sql(settings, f"SELECT count(*) FROM {table}")[0][0]


def test_a_copy_complaint_is_fast_tracked_upheld_as_confirmed_evidence_and_reopened_by_a_counter_notice(
    tenants,
):
    t = tenants
    reference = _register(t.admin, FAKE)
    assert (
        t.admin.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": True}).status_code
        == 200
    )
    brand_hook, platform_hook, other_platform_hook = Receiver(), Receiver(), Receiver()
    _hook(t.acme, brand_hook)
    _hook(t.platform_a, platform_hook)
    _hook(t.platform_b, other_platform_hook)

    filed = _file(t.acme, reference_ids=str(reference))
    assert filed.status_code == 201, filed.text
    complaint = filed.json()
    triage = complaint["triage"]
    assert complaint["state"] == "open" and complaint["lane"] == "fast", triage
    assert triage["model_verdict"] == "likely_counterfeit" and triage["score"] >= triage["fast_track_bar"]
    assert triage["track_record"] == {"upheld": 0, "rejected": 0, "share": 0.5}  # a new brand: the prior
    assert [f["factor"] for f in triage["factors"]] == ["model", "track_record", "seller_risk"]
    assert complaint["reference_ids"] == [reference] and len(complaint["photos"]) == 1
    assert complaint["photos"][0]["check_id"] and not complaint["sla"]["breached"]
    cid = complaint["id"]
    _wait(lambda: len(_events(brand_hook)) == 2 and len(_events(platform_hook)) == 2)
    assert sorted(_events(platform_hook)) == [("complaint.fast_tracked", cid), ("complaint.filed", cid)]
    assert other_platform_hook.requests == []

    # Who sees it: the complainant and the platform; another brand or platform cannot tell it exists.
    assert t.globex.get(f"/v1/complaints/{cid}").status_code == 404
    assert t.platform_b.get(f"/v1/complaints/{cid}").status_code == 404
    assert t.platform_b.get("/v1/complaints").json()["items"] == []
    assert [c["id"] for c in t.platform_a.get("/v1/complaints").json()["items"]] == [cid]
    assert t.acme.post(f"/v1/complaints/{cid}/decision", json={"outcome": "upheld"}).status_code == 403
    assert (
        t.platform_b.post(
            f"/v1/complaints/{cid}/decision", json={"outcome": "upheld", "action": "removed"}
        ).status_code
        == 404
    )
    # Filed but undecided: the seller's record on the platform does not count it.
    assert t.platform_a.get("/v1/sellers/mkt/shop-x").status_code == 404

    decided = t.platform_a.post(
        f"/v1/complaints/{cid}/decision", json={"outcome": "upheld", "action": "removed"}
    )
    assert decided.status_code == 200, decided.text
    decision = decided.json()["decision"]
    assert (
        decided.json()["state"] == "upheld" and decision["action"] == "removed" and not decision["breached"]
    )
    added = decision["added_reference_ids"]
    assert len(added) == 1  # acme opted in: the complaint's photo joined its known-fake bank
    assert t.acme.get(f"/v1/references/{added[0]}").json()["label"] == "counterfeit"
    seller = t.platform_a.get("/v1/sellers/mkt/shop-x").json()
    assert seller["confirmed_counterfeit"] == 1 and seller["risk"] > 0.4, seller
    assert t.platform_b.get("/v1/sellers/mkt/shop-x").status_code == 404  # platform A's decision, not B's
    again = t.platform_a.post(f"/v1/complaints/{cid}/decision", json={"outcome": "rejected", "reason": "x"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "complaint_state"

    reopened = t.platform_a.post(
        f"/v1/complaints/{cid}/counter-notice", json={"statement": "I bought them at a store."}
    )
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert body["state"] == "open" and body["decision"] is None
    assert [h["event"] for h in body["history"]] == ["filed", "upheld", "counter_notice"]
    assert body["history"][-1]["previous_decision"]["action"] == "removed"
    assert t.acme.get(f"/v1/references/{added[0]}").status_code == 404  # withdrawn from the bank
    assert t.platform_a.get("/v1/sellers/mkt/shop-x").status_code == 404  # and from the seller's record
    rejected = t.platform_a.post(
        f"/v1/complaints/{cid}/decision", json={"outcome": "rejected", "reason": "receipt shown"}
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    _wait(lambda: [e for e, _ in _events(brand_hook)].count("complaint.decided") == 2)
    assert ("complaint.reopened", cid) in _events(platform_hook)

    # Its track record now counts one rejection: the next complaint starts below the prior.
    track = _file(t.acme, listing_id="L-78").json()["triage"]["track_record"]
    assert track == {"upheld": 0, "rejected": 1, "share": 0.4}


def test_evidence_from_the_platforms_own_listing_check_and_a_no_evidence_photo_goes_to_the_normal_lane(
    tenants,
):
    t = tenants
    _register(t.admin, FAKE)
    listing = t.platform_a.post(
        "/v1/listings/check",
        data={"listing_id": "L-1", "marketplace": "mkt", "seller_id": "shop-y"},
        files=[("images", ("p.jpg", resized_jpeg_copy(FAKE), "image/jpeg"))],
    ).json()
    by_record = _file(t.acme, seeds=(), listing_id="L-1", seller_id="shop-y")
    assert by_record.status_code == 201, by_record.text
    body = by_record.json()
    assert body["listing"]["listing_check_id"] == listing["listing_check_id"] and body["photos"] == []
    assert body["triage"]["model_probability"] == listing["counterfeit_probability"]
    # Platform B never checked L-1: the same complaint to B has no evidence.
    to_b = _file(t.acme, seeds=(), listing_id="L-1", platform="market-b")
    assert to_b.status_code == 422 and to_b.json()["error"]["code"] == "no_evidence"

    unrelated = _file(t.acme, seeds=(UNRELATED,), listing_id="L-2").json()
    assert unrelated["triage"]["model_verdict"] == "no_match" and unrelated["lane"] == "normal"
    queue = t.platform_a.get("/v1/complaints", params={"state": "open"}).json()["items"]
    assert [c["lane"] for c in queue] == ["fast", "normal"]  # the fast lane first
    # Upheld on the platform's own listing: its checks are confirmed, no second listing row is made.
    listings_before = _count(t.settings, "listings")
    t.platform_a.post(
        f"/v1/complaints/{body['id']}/decision", json={"outcome": "upheld", "action": "restricted"}
    )
    assert _count(t.settings, "listings") == listings_before
    assert t.platform_a.get("/v1/sellers/mkt/shop-y").json()["confirmed_counterfeit"] == 1


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"platform": "nowhere"}, "unknown_platform"),
        ({"claim": "dislike"}, "invalid_request"),
        ({"listing_id": None}, "listing_required"),
        ({"reference_ids": "GLOBEX"}, "unknown_reference"),
        ({"brand": "globex"}, "other_brand"),
        ({"surprise": "1"}, "invalid_request"),
        ({"seller_id": "s", "marketplace": None}, "marketplace_required"),
    ],
)
def test_a_bad_complaint_is_refused_and_writes_nothing(tenants, fields, code):
    t = tenants
    globex_reference = _register(t.admin, 3, brand="globex")
    if fields.get("reference_ids") == "GLOBEX":
        fields = {**fields, "reference_ids": str(globex_reference)}
    tables = ("complaints", "evidence_photos", "checks", "webhook_deliveries", "listings")
    before = {table: _count(t.settings, table) for table in tables}
    data = {k: v for k, v in fields.items() if v is not None}
    omitted = [k for k, v in fields.items() if v is None]
    response = _file_without(t.acme, omitted, **data)
    assert response.status_code in (403, 422), response.text
    assert response.json()["error"]["code"] == code
    assert {table: _count(t.settings, table) for table in tables} == before


def _file_without(client, omitted, **fields):
    data = {
        "platform": "default",
        "claim": "counterfeit",
        "statement": "fakes",
        "listing_id": "L-9",
        "marketplace": "mkt",
        **fields,
    }
    data = {k: v for k, v in data.items() if k not in omitted}
    return client.post(
        "/v1/complaints", data=data, files=[("images", ("a.jpg", resized_jpeg_copy(FAKE), "image/jpeg"))]
    )


def test_a_decision_needs_its_action_or_reason_and_two_deciders_at_once_get_one_decision(tenants):
    t = tenants
    _register(t.admin, FAKE)
    cid = _file(t.acme).json()["id"]
    for body in (
        {"outcome": "upheld"},
        {"outcome": "rejected"},
        {"outcome": "rejected", "reason": "r", "action": "removed"},
    ):
        response = t.platform_a.post(f"/v1/complaints/{cid}/decision", json=body)
        assert response.status_code == 422, (body, response.text)
    assert (
        t.platform_a.post(f"/v1/complaints/{cid}/counter-notice", json={"statement": "s"}).status_code == 409
    )
    statuses = []
    barrier = threading.Barrier(4)

    def decide(outcome):
        barrier.wait()
        body = {"outcome": outcome, **({"action": "warned"} if outcome == "upheld" else {"reason": "no"})}
        statuses.append(t.platform_a.post(f"/v1/complaints/{cid}/decision", json=body).status_code)

    threads = [threading.Thread(target=decide, args=(o,)) for o in ("upheld", "rejected") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409]
    state = t.acme.get(f"/v1/complaints/{cid}").json()
    assert len([h for h in state["history"] if h["event"] in ("upheld", "rejected")]) == 1
    reviews = _count(t.settings, "reviews")
    assert reviews == (1 if state["state"] == "upheld" else 0)


def test_a_platforms_own_service_levels_decide_the_lane_and_a_late_decision_is_a_breach(tenants):
    t = tenants
    _register(t.admin, FAKE)
    policy = t.platform_a.get("/v1/platforms/default/complaint-policy").json()
    assert policy == {
        "platform": "default",
        "fast_track_bar": 0.8,
        "fast_sla_hours": 24.0,
        "normal_sla_hours": 168.0,
    }
    assert t.platform_b.get("/v1/platforms/default/complaint-policy").status_code == 404
    assert t.acme.get("/v1/platforms/default/complaint-policy").status_code == 403
    bad = t.platform_a.put(
        "/v1/platforms/default/complaint-policy", json={"fast_sla_hours": 200, "normal_sla_hours": 100}
    )
    assert bad.status_code == 422
    strict = {
        "fast_track_bar": 0.999999,
        "fast_sla_hours": 0.0002,
        "normal_sla_hours": 0.0003,
    }  # about a second
    assert t.platform_a.put("/v1/platforms/default/complaint-policy", json=strict).status_code == 200

    complaint = _file(t.acme).json()
    assert complaint["lane"] == "normal"  # the same copy, below this platform's bar
    time.sleep(1.5)
    overdue = t.platform_a.get("/v1/complaints", params={"overdue": "true"}).json()["items"]
    assert [c["id"] for c in overdue] == [complaint["id"]] and overdue[0]["sla"]["breached"]
    assert "counterfeit_complaints_overdue 1.0" in t.admin.get("/metrics").text
    late = t.platform_a.post(
        f"/v1/complaints/{complaint['id']}/decision", json={"outcome": "upheld", "action": "removed"}
    )
    assert late.json()["decision"]["breached"] is True
    metrics = t.admin.get("/metrics").text
    assert (
        'counterfeit_complaint_decisions_total{breached="true",lane="normal",outcome="upheld"} 1.0' in metrics
    )
    assert "counterfeit_complaints_overdue 0.0" in metrics
