"""Every endpoint of the OpenAPI × every role × another tenant's ids, over HTTP.

The rules are a table: one row per operation in ``/openapi.json``, each with how to call it on objects
owned by platform A and brand acme, and the status every caller must get. An operation without a row
fails the test, so a new endpoint cannot land without saying who may use it. Callers: no key, platform A
(the objects' platform), platform B (another tenant), brand acme (the objects' brand), brand globex,
an exchange peer, admin. "Another tenant's ids" are the rows' own objects seen by platform B and globex:
they must get 404 (or 403 where the role may never use the endpoint), never the object.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from service.db.models import Role
from tests.helpers import create_api_key, make_settings, product_photo, resized_jpeg_copy, running
from tests.service.exchange.test_webhooks import Receiver
from tests.service.jobs.test_scans import _zip

CALLERS = ("none", "platform_a", "platform_b", "brand_a", "brand_b", "exchange", "admin")
NONE, PA, PB, BA, BB, EX, AD = CALLERS


def expect(default: int, **by_caller: int) -> dict[str, int]:
    return {caller: by_caller.get(caller, default) for caller in CALLERS}


def only(status: int, *allowed: str, others: int = 403, none: int = 401, **special: int) -> dict[str, int]:
    """``status`` for the ``allowed`` callers (and admin), ``others`` for the rest, 401 without a key."""
    return {
        caller: (
            none if caller == NONE else special.get(caller, status if caller in (*allowed, AD) else others)
        )
        for caller in CALLERS
    }


class World:
    """Objects owned by platform A and brand acme, made by their owners over HTTP."""

    def __init__(self, server, clients):
        self.server, self.clients = server, clients
        self.seeds = itertools.count(300)
        self.receiver = Receiver()
        admin, a = clients[AD], clients[PA]
        self.reference = self.register(seed=1)  # the photo platform A's check and listing show: acme's
        check = a.post(
            "/v1/check",
            files={"image": ("q.jpg", resized_jpeg_copy(1), "image/jpeg")},
            data={"brand": "acme"},
        )
        assert check.status_code == 200, check.text
        self.check_id = check.json()["check_id"]
        listing = a.post(
            "/v1/listings/check",
            data={"seller_id": "shop-a", "marketplace": "mkt", "listing_id": "L1"},
            files=[("images", ("p.jpg", resized_jpeg_copy(1), "image/jpeg"))],
        )
        assert listing.status_code == 200, listing.text
        self.listing_check_id = listing.json()["listing_check_id"]
        self.webhook = self.hook()
        self.complaint_id = self.complaint()
        self.purchase_id = self.purchase(self.clients[BA]).json()["id"]
        self.person_id = self.person(self.clients[BA]).json()["id"]
        scan = a.post(
            "/v1/scans",
            files={
                "feed": ("f.jsonl", json.dumps({"listing_id": "S1", "image_files": ["a.jpg"]}), "x"),
                "images": ("p.zip", _zip({"a.jpg": resized_jpeg_copy(1)}), "application/zip"),
            },
        )
        assert scan.status_code == 202, scan.text
        self.scan_id = scan.json()["scan_id"]
        deadline = time.monotonic() + 60
        while admin.get(f"/v1/jobs/{self.scan_id}").json()["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)

    def register(self, seed: int | None = None) -> int:
        response = self.clients[AD].post(
            "/v1/references",
            data={"brand": "acme", "label": "counterfeit"},
            files={"image": ("r.png", product_photo(seed or next(self.seeds)), "image/png")},
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def complaint(self) -> str:
        """An open complaint of acme's, filed with platform A."""
        response = self.clients[BA].post(
            "/v1/complaints",
            data={"platform": "default", "claim": "counterfeit", "statement": "fake", "listing_id": "L1"},
            files=[("images", ("p.jpg", resized_jpeg_copy(1), "image/jpeg"))],
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def purchase(self, client):
        """Record a genuine test purchase of acme's on platform A (a new order each time)."""
        return client.post(
            "/v1/test-purchases",
            data={
                "platform": "default",
                "brand": "acme",
                "listing_id": "L1",
                "order_reference": f"ORD-{next(self.seeds)}",
                "ordered_on": "2026-11-01",
                "outcome": "not_delivered",
                "examiner_note": "never arrived",
            },
        )

    def person(self, client):
        """Add a viewer to acme's people (a new username each time)."""
        body = {
            "username": f"analyst-{next(self.seeds)}",
            "access": "viewer",
            "role": "brand",
            "brand": "acme",
        }
        return client.post("/v1/people", json=body)

    def delivery(self) -> str:
        """A finished delivery to platform A's endpoint (a ping its receiver accepted)."""
        admin = self.clients[AD]
        ping = admin.post(f"/v1/webhooks/{self.webhook}/ping").json()["id"]
        deadline = time.monotonic() + 20
        while admin.get(f"/v1/webhooks/{self.webhook}/deliveries").json()["items"][0]["state"] == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return ping

    def hook(self) -> str:
        response = self.clients[PA].post(
            "/v1/webhooks", json={"url": self.receiver.url, "events": ["scan.completed"]}
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]


def rules(w: World) -> dict[tuple[str, str], tuple]:
    photo = {"image": ("q.jpg", resized_jpeg_copy(1), "image/jpeg")}
    brand_read = only(
        200, BA, others=403, brand_b=404
    )  # a brand key reads its own brand's object; another's is 404
    scan_read = only(200, PA, platform_b=404)
    hook_call = only(200, PA, platform_b=404, brand_a=404, brand_b=404)
    return {
        ("GET", "/healthz"): (lambda c: c.get("/healthz"), expect(200)),
        ("GET", "/readyz"): (lambda c: c.get("/readyz"), expect(200)),
        ("GET", "/v1/info"): (lambda c: c.get("/v1/info"), only(200, PA, PB, BA, BB)),
        ("GET", "/metrics"): (lambda c: c.get("/metrics"), only(200)),
        ("POST", "/v1/references"): (
            lambda c: c.post(
                "/v1/references",
                data={"brand": "acme", "label": "authentic"},
                files={"image": ("n.png", product_photo(next(w.seeds)), "image/png")},
            ),
            only(201, BA),
        ),
        ("GET", "/v1/references"): (lambda c: c.get("/v1/references"), only(200, BA, BB)),
        ("GET", "/v1/references/{reference_id}"): (
            lambda c: c.get(f"/v1/references/{w.reference}"),
            brand_read,
        ),
        ("GET", "/v1/references/{reference_id}/image"): (
            lambda c: c.get(f"/v1/references/{w.reference}/image"),
            brand_read,
        ),
        ("DELETE", "/v1/references/{reference_id}"): (
            lambda c: c.delete(f"/v1/references/{w.register()}"),
            brand_read,
        ),
        ("POST", "/v1/check"): (lambda c: c.post("/v1/check", files=photo), only(200, PA, PB)),
        ("GET", "/v1/checks/{check_id}"): (
            lambda c: c.get(f"/v1/checks/{w.check_id}"),
            only(200, PA, BA, PB, BB, platform_b=404, brand_b=404),
        ),
        ("GET", "/v1/checks"): (lambda c: c.get("/v1/checks"), only(200, PA, PB, BA, BB)),
        ("GET", "/v1/listings/{listing_check_id}"): (
            lambda c: c.get(f"/v1/listings/{w.listing_check_id}"),
            only(200, PA, BA, PB, BB, platform_b=404, brand_b=404),
        ),
        ("GET", "/v1/scans"): (lambda c: c.get("/v1/scans"), only(200, PA, PB)),
        ("POST", "/v1/check/batch"): (
            lambda c: c.post("/v1/check/batch", files=[("images", photo["image"])]),
            only(200, PA, PB),
        ),
        ("POST", "/v1/listings/check"): (
            lambda c: c.post("/v1/listings/check", files=[("images", photo["image"])]),
            only(200, PA, PB),
        ),
        # A seller is seen through one's own platform's (or brand's) listings: platform B and globex have none.
        ("GET", "/v1/sellers/{marketplace}/{seller_id}"): (
            lambda c: c.get("/v1/sellers/mkt/shop-a"),
            only(200, PA, PB, BA, BB, platform_b=404, brand_b=404),
        ),
        ("GET", "/v1/sellers/{marketplace}/{seller_id}/network"): (
            lambda c: c.get("/v1/sellers/mkt/shop-a/network"),
            only(200, PA, platform_b=404),
        ),
        ("GET", "/v1/sellers/{marketplace}/{seller_id}/case"): (
            lambda c: c.get("/v1/sellers/mkt/shop-a/case"),
            only(409, PA, platform_b=404),
        ),  # 409: this platform has no signing key
        ("GET", "/v1/sellers"): (lambda c: c.get("/v1/sellers"), only(200, PA, PB, BA, BB)),
        ("POST", "/v1/scans"): (
            lambda c: c.post("/v1/scans", files={"feed": ("f.jsonl", b"", "x")}),
            only(422, PA, PB),
        ),  # an empty feed: the role passes, the input is refused
        ("GET", "/v1/scans/{scan_id}"): (lambda c: c.get(f"/v1/scans/{w.scan_id}"), scan_read),
        ("GET", "/v1/scans/{scan_id}/results"): (
            lambda c: c.get(f"/v1/scans/{w.scan_id}/results"),
            scan_read,
        ),
        ("GET", "/v1/scans/{scan_id}/sellers"): (
            lambda c: c.get(f"/v1/scans/{w.scan_id}/sellers"),
            scan_read,
        ),
        ("GET", "/v1/scans/{scan_id}/export"): (lambda c: c.get(f"/v1/scans/{w.scan_id}/export"), scan_read),
        ("POST", "/v1/scans/{scan_id}/cancel"): (
            lambda c: c.post(f"/v1/scans/{w.scan_id}/cancel"),
            only(200, PA, platform_b=404),
        ),  # finished: answered as it is
        ("POST", "/v1/reindex"): (lambda c: c.post("/v1/reindex", json={"engine": "nope"}), only(422)),
        ("GET", "/v1/jobs"): (lambda c: c.get("/v1/jobs"), only(200)),
        ("GET", "/v1/jobs/{job_id}"): (lambda c: c.get(f"/v1/jobs/{w.scan_id}"), only(200)),
        ("POST", "/v1/jobs/{job_id}/cancel"): (lambda c: c.post(f"/v1/jobs/{w.scan_id}/cancel"), only(200)),
        ("GET", "/v1/brands/{brand}/policy"): (
            lambda c: c.get("/v1/brands/acme/policy"),
            only(200, BA, brand_b=404),
        ),
        ("PUT", "/v1/brands/{brand}/policy"): (
            lambda c: c.put("/v1/brands/acme/policy", json={}),
            only(200, BA, brand_b=404),
        ),
        ("POST", "/v1/checks/{check_id}/review"): (
            lambda c: c.post(f"/v1/checks/{w.check_id}/review", json={"label": "authentic"}),
            only(201, BA, brand_b=404),
        ),
        ("GET", "/v1/signals/export"): (
            lambda c: c.get("/v1/signals/export", params={"brand": "acme"}),
            only(409, BA, brand_b=404),
        ),  # 409: this platform has no signing key
        ("POST", "/v1/signals/import"): (lambda c: c.post("/v1/signals/import", json={}), only(422)),
        ("GET", "/v1/webhooks"): (lambda c: c.get("/v1/webhooks"), only(200, PA, PB, BA, BB)),
        ("POST", "/v1/webhooks"): (
            lambda c: c.post("/v1/webhooks", json={"url": w.receiver.url, "events": ["nope"]}),
            only(422, PA, PB, BA, BB),
        ),
        ("DELETE", "/v1/webhooks/{webhook_id}"): (lambda c: c.delete(f"/v1/webhooks/{w.hook()}"), hook_call),
        ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): (
            lambda c: c.post(f"/v1/webhooks/{w.webhook}/rotate-secret", json={}),
            hook_call,
        ),
        ("POST", "/v1/webhooks/{webhook_id}/ping"): (
            lambda c: c.post(f"/v1/webhooks/{w.webhook}/ping"),
            only(201, PA, platform_b=404, brand_a=404, brand_b=404),
        ),
        ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (
            lambda c: c.post(f"/v1/webhooks/{w.webhook}/deliveries/{w.delivery()}/redeliver"),
            only(201, PA, platform_b=404, brand_a=404, brand_b=404),
        ),
        ("GET", "/v1/webhooks/{webhook_id}/deliveries"): (
            lambda c: c.get(f"/v1/webhooks/{w.webhook}/deliveries"),
            hook_call,
        ),
        ("GET", "/v1/calibrations"): (lambda c: c.get("/v1/calibrations"), only(200)),
        ("POST", "/v1/calibrations/{version}/activate"): (
            lambda c: c.post("/v1/calibrations/none-saved/activate"),
            only(404),
        ),
        ("POST", "/v1/calibrations/rollback"): (lambda c: c.post("/v1/calibrations/rollback"), only(200)),
        ("GET", "/v1/audit"): (lambda c: c.get("/v1/audit"), only(200, BA, BB)),
        ("POST", "/v1/keys/rotate"): (
            lambda c: c.post("/v1/keys/rotate", json={"overlap_hours": 1}),
            only(201, PA, PB, BA, BB, EX),
        ),
        ("POST", "/v1/complaints"): (
            lambda c: c.post(
                "/v1/complaints",
                data={
                    "brand": "acme",
                    "platform": "default",
                    "claim": "counterfeit",
                    "statement": "s",
                    "url": "https://m.example/1",
                },
                files=[("images", photo["image"])],
            ),
            only(201, BA),
        ),
        ("GET", "/v1/complaints"): (lambda c: c.get("/v1/complaints"), only(200, PA, PB, BA, BB)),
        ("GET", "/v1/complaints/{complaint_id}"): (
            lambda c: c.get(f"/v1/complaints/{w.complaint_id}"),
            only(200, PA, BA, PB, BB, platform_b=404, brand_b=404),
        ),
        ("POST", "/v1/complaints/{complaint_id}/decision"): (
            lambda c: c.post(
                f"/v1/complaints/{w.complaint()}/decision", json={"outcome": "rejected", "reason": "r"}
            ),
            only(200, PA, platform_b=404),
        ),
        ("POST", "/v1/complaints/{complaint_id}/counter-notice"): (
            lambda c: c.post(f"/v1/complaints/{w.complaint_id}/counter-notice", json={"statement": "s"}),
            only(409, PA, platform_b=404),
        ),  # 409: the complaint is open, not upheld
        ("GET", "/v1/platforms/{platform}/complaint-policy"): (
            lambda c: c.get("/v1/platforms/default/complaint-policy"),
            only(200, PA, platform_b=404),
        ),
        ("PUT", "/v1/platforms/{platform}/complaint-policy"): (
            lambda c: c.put("/v1/platforms/default/complaint-policy", json={}),
            only(200, PA, platform_b=404),
        ),
        ("POST", "/v1/test-purchases"): (w.purchase, only(201, PA, BA)),
        ("GET", "/v1/test-purchases"): (lambda c: c.get("/v1/test-purchases"), only(200, PA, PB, BA, BB)),
        ("GET", "/v1/test-purchases/{purchase_id}"): (
            lambda c: c.get(f"/v1/test-purchases/{w.purchase_id}"),
            only(200, PA, BA, PB, BB, platform_b=404, brand_b=404),
        ),
        ("GET", "/v1/reports/brands/{brand}"): (
            lambda c: c.get("/v1/reports/brands/acme", params={"platform": "default"}),
            only(200, PA, BA, PB, BB, platform_b=404, brand_b=404),
        ),
        ("POST", "/v1/people"): (w.person, only(201, BA)),
        ("GET", "/v1/people"): (lambda c: c.get("/v1/people"), only(200, PA, PB, BA, BB)),
        ("POST", "/v1/people/{person_id}/disable"): (
            lambda c: c.post(f"/v1/people/{w.person_id}/disable"),
            only(200, BA, platform_a=404, platform_b=404, brand_b=404),
        ),
        ("POST", "/v1/people/{person_id}/password"): (
            lambda c: c.post(f"/v1/people/{w.person_id}/password"),
            only(200, BA, platform_a=404, platform_b=404, brand_b=404),
        ),
        ("GET", "/v1/exchange/feed"): (
            lambda c: c.get("/v1/exchange/feed"),
            only(409, EX),
        ),  # 409: no signing key
    }


@pytest.fixture
def world(tmp_path):
    settings = make_settings(tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True)
    tokens = {
        PA: create_api_key(settings, Role.platform),
        PB: create_api_key(settings, Role.platform, platform="market-b"),
        BA: create_api_key(settings, Role.brand, "acme"),
        BB: create_api_key(settings, Role.brand, "globex"),
        EX: create_api_key(settings, Role.exchange),
        AD: create_api_key(settings, Role.admin),
    }
    with running(settings) as server:
        clients = {caller: server.client(tokens.get(caller)) for caller in CALLERS}
        try:
            yield server, clients, World(server, clients)
        finally:
            for client in clients.values():
                client.close()


def test_every_operation_has_a_rule_and_no_caller_reaches_another_tenants_objects(world):
    server, clients, w = world
    table = rules(w)
    operations = {
        (method.upper(), path)
        for path, item in clients[AD].get("/openapi.json").json()["paths"].items()
        for method in item
    }
    assert operations == set(table), (
        f"without a rule: {sorted(operations - set(table))}; stale: {sorted(set(table) - operations)}"
    )
    failures = []
    for (method, path), (call, expected) in table.items():
        for caller in CALLERS:
            response = call(clients[caller])
            if response.status_code != expected[caller]:
                failures.append(
                    f"{method} {path} as {caller}: {response.status_code}, expected {expected[caller]}: "
                    f"{response.text[:150]}"
                )
    assert not failures, "\n".join(failures)
