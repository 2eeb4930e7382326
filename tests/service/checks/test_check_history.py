"""Reading checks, listings and scans back over HTTP: by id and in pages, each tenant its own."""

from __future__ import annotations

import json

from tests.helpers import resized_jpeg_copy
from tests.service.jobs.test_scans import _zip
from tests.service.marketplace.test_complaints import FAKE, UNRELATED, _register


def _check(client, seed: int):
    response = client.post(
        "/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(seed), "image/jpeg")}, data={"brand": "acme"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_checks_are_read_back_by_id_and_in_pages_within_the_tenancy(tenants):
    t = tenants
    _register(t.admin, FAKE)
    mine = [_check(t.platform_a, seed) for seed in (FAKE, UNRELATED, FAKE)]
    theirs = _check(t.platform_b, FAKE)
    one = t.platform_a.get(f"/v1/checks/{mine[0]['check_id']}").json()
    assert (
        one["verdict"] == mine[0]["verdict"]
        and one["evidence"][0]["reference_id"] == mine[0]["evidence"][0]["reference_id"]
    )
    assert t.platform_a.get(f"/v1/checks/{theirs['check_id']}").status_code == 404
    assert t.acme.get(f"/v1/checks/{theirs['check_id']}").status_code == 200  # about acme, whoever checked
    assert t.globex.get(f"/v1/checks/{theirs['check_id']}").status_code == 404

    seen, cursor = [], None
    while True:
        page = t.platform_a.get(
            "/v1/checks", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [c["check_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["check_id"] for c in reversed(mine)]  # newest first, each once
    flagged = t.platform_a.get("/v1/checks", params={"verdict": "likely_counterfeit"}).json()["items"]
    assert {c["check_id"] for c in flagged} == {mine[0]["check_id"], mine[2]["check_id"]}
    assert t.platform_a.get("/v1/checks", params={"cursor": "yesterday"}).status_code == 422
    assert len(t.admin.get("/v1/checks").json()["items"]) == 4


def test_a_listing_check_and_the_platforms_scans_are_found_again(tenants):
    t = tenants
    _register(t.admin, FAKE)
    listing = t.platform_a.post(
        "/v1/listings/check",
        data={"listing_id": "L-1", "marketplace": "mkt", "seller_id": "s", "title": "Bag"},
        files=[("images", ("p.jpg", resized_jpeg_copy(FAKE), "image/jpeg"))],
    ).json()
    record = t.platform_a.get(f"/v1/listings/{listing['listing_check_id']}").json()
    assert (record["title"], record["verdict"], record["brand"]) == ("Bag", listing["verdict"], "acme")
    assert [p["check_id"] for p in record["photos"]] == [listing["photos"][0]["result"]["check_id"]]
    assert t.platform_b.get(f"/v1/listings/{listing['listing_check_id']}").status_code == 404
    assert t.acme.get(f"/v1/listings/{listing['listing_check_id']}").status_code == 200

    scan = t.platform_a.post(
        "/v1/scans",
        files={
            "feed": ("f.jsonl", json.dumps({"listing_id": "S1", "image_files": ["a.jpg"]}), "x"),
            "images": ("p.zip", _zip({"a.jpg": resized_jpeg_copy(FAKE)}), "application/zip"),
        },
    )
    assert scan.status_code == 202, scan.text
    assert [s["id"] for s in t.platform_a.get("/v1/scans").json()["items"]] == [scan.json()["scan_id"]]
    assert t.platform_b.get("/v1/scans").json()["items"] == []
