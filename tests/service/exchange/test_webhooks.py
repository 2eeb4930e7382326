"""Webhooks over HTTP: signed deliveries from the outbox, retried until accepted, scoped to the brand."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.db.models import Role
from tests.helpers import create_api_key, make_settings, product_photo, resized_jpeg_copy, running


class Receiver:
    """A webhook endpoint on loopback that fails its first ``failures`` requests with 500."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.requests: list[tuple[dict, bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.requests) < receiver.failures else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[tuple[dict, bytes, int]]:
        return [r for r in self.requests if r[2] == 200]


def _verify(secret: str, headers: dict, body: bytes) -> bool:
    parts = [p.split("=", 1) for p in headers["Counterfeit-Signature"].split(",")]
    timestamp = int(next(v for k, v in parts if k == "t"))
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) < 300 and any(
        k == "v1" and hmac.compare_digest(v, expected) for k, v in parts
    )


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def hook_server(tmp_path, keys_for):
    settings = make_settings(
        tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True, webhook_retry_base_seconds=0.1
    )
    keys = keys_for(settings)
    with running(settings) as server:
        yield server, keys


def test_a_failing_receiver_gets_exactly_one_accepted_signed_delivery_and_other_brands_get_nothing(
    hook_server,
):
    server, keys = hook_server
    flaky, other = Receiver(failures=2), Receiver()
    with (
        server.client(keys.brand_a) as acme,
        server.client(keys.brand_b) as globex,
        server.client(keys.platform) as platform,
        server.client(keys.admin) as admin,
    ):
        created = acme.post(
            "/v1/webhooks",
            json={"url": flaky.url, "events": ["check.likely_counterfeit", "review.confirmed"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["brand"] == "acme" and hook["secret"].startswith("whsec_")
        assert acme.get("/v1/webhooks").json()["items"][0]["secret"] is None  # shown once only
        assert (
            globex.post(
                "/v1/webhooks", json={"url": other.url, "events": ["check.likely_counterfeit"]}
            ).status_code
            == 201
        )

        admin.post(
            "/v1/references",
            files={"image": ("f.png", product_photo(1), "image/png")},
            data={"brand": "acme", "label": "counterfeit"},
        )
        result = platform.post(
            "/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(1), "image/jpeg")}
        ).json()
        assert result["verdict"] == "likely_counterfeit"

        _wait(lambda: flaky.accepted())
        time.sleep(1.0)  # anything more that would (wrongly) arrive
        assert [r[2] for r in flaky.requests] == [500, 500, 200]
        headers, body, _ = flaky.accepted()[0]
        assert len(flaky.accepted()) == 1 and _verify(hook["secret"], headers, body)
        assert not _verify("whsec_wrong", headers, body)
        event = json.loads(body)
        assert event["event"] == "check.likely_counterfeit" and event["brand"] == "acme"
        assert (
            event["data"]["check_id"] == result["check_id"] and headers["Counterfeit-Delivery"] == event["id"]
        )
        assert other.requests == []  # globex's endpoint never hears of acme's checks
        matched = event["data"]["matched"]  # the references that matched, not every neighbour searched
        assert (
            event["data"]["evidence_reference_ids"]
            == [m["reference_id"] for m in matched]
            == [result["evidence"][0]["reference_id"]]
        )
        assert matched[0]["label"] == "counterfeit" and matched[0]["signals"]

        deliveries = acme.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
        assert [(d["state"], d["attempts"], d["last_status"]) for d in deliveries] == [("delivered", 3, 200)]
        assert globex.get(f"/v1/webhooks/{hook['id']}/deliveries").status_code == 404  # not its hook

        # Rotation: the next delivery is signed with the new secret and, for the overlap, the old one.
        rotated = acme.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": 1}).json()
        assert rotated["secret"] != hook["secret"] and rotated["previous_secret_valid_until"]
        assert (
            acme.post(f"/v1/checks/{result['check_id']}/review", json={"label": "counterfeit"}).status_code
            == 201
        )
        _wait(lambda: len(flaky.accepted()) == 2)
        headers, body, _ = flaky.accepted()[1]
        assert json.loads(body)["event"] == "review.confirmed"
        assert _verify(rotated["secret"], headers, body) and _verify(hook["secret"], headers, body)
        assert globex.delete(f"/v1/webhooks/{hook['id']}").status_code == 404  # another brand's hook
        assert acme.delete(f"/v1/webhooks/{hook['id']}").json()["id"] == hook["id"]
        assert acme.get("/v1/webhooks").json()["items"] == []


def test_bad_webhooks_are_refused(hook_server):
    server, keys = hook_server
    with server.client(keys.platform) as platform:
        for body in (
            {"url": "http://169.254.169.254/latest", "events": ["check.likely_counterfeit"]},
            {"url": "http://10.0.0.8/hook", "events": ["check.likely_counterfeit"]},
            {"url": "https://example.com/hook", "events": ["check.maybe"]},
            {"url": "https://example.com/hook", "events": []},
            {"url": "ftp://example.com/hook", "events": ["review.confirmed"]},
            {"url": "https://example.com/hook", "events": ["review.confirmed"], "colour": "red"},
            # host names no resolver takes (they raised UnicodeError: a 500)
            *(
                {"url": url, "events": ["review.confirmed"]}
                for url in ("http://a..b/x", "http://.x/", f"http://{'a' * 64}.com/")
            ),
        ):
            response = platform.post("/v1/webhooks", json=body)
            assert response.status_code == 422, (body, response.text)
        assert platform.get("/v1/webhooks").json()["items"] == []
        assert platform.delete("/v1/webhooks/whk_0000000000000000").status_code == 404


@pytest.mark.slow  # starts and kills a server process
def test_deliveries_survive_a_kill_9_of_the_service(tmp_path, keys_for):
    """Every check answered likely_counterfeit while the receiver was down and before a SIGKILL is
    delivered once the service is back: the outbox row was committed with the check."""
    import signal

    import httpx

    from tests.helpers import free_port
    from tests.system.test_durability import _start_process

    settings = make_settings(
        tmp_path / "data", unsafe_fetch_allow_loopback_for_tests=True, webhook_retry_base_seconds=0.2
    )
    keys = keys_for(settings)
    receiver_port = free_port()  # nothing listens there yet: every attempt before the kill fails
    port = free_port()
    process = _start_process(settings, port)
    acknowledged = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            admin = {"Authorization": f"Bearer {keys.admin}"}
            assert (
                client.post(
                    "/v1/webhooks",
                    headers=admin,
                    json={
                        "url": f"http://127.0.0.1:{receiver_port}/hook",
                        "events": ["check.likely_counterfeit"],
                    },
                ).status_code
                == 201
            )
            client.post(
                "/v1/references",
                headers=admin,
                files={"image": ("f.png", product_photo(1), "image/png")},
                data={"brand": "acme", "label": "counterfeit"},
            )
            for size in range(180, 185):  # few and fast: the kill comes before the backoff grows long
                response = client.post(
                    "/v1/check",
                    headers={"Authorization": f"Bearer {keys.platform}"},
                    files={"image": ("q.jpg", resized_jpeg_copy(1, size=size), "image/jpeg")},
                )
                assert response.json()["verdict"] == "likely_counterfeit"
                acknowledged.append(response.json()["check_id"])
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    class Fixed(Receiver):  # the receiver comes up on the port the hook names
        def __init__(self):
            super().__init__()
            self.server.server_close()
            handler = self.server.RequestHandlerClass
            self.server = ThreadingHTTPServer(("127.0.0.1", receiver_port), handler)
            threading.Thread(target=self.server.serve_forever, daemon=True).start()

    receiver = Fixed()
    process = _start_process(settings, port)
    try:
        _wait(
            lambda: len({json.loads(b)["id"] for _, b, _ in receiver.accepted()}) >= len(acknowledged),
            timeout=60,
        )
        time.sleep(1.0)
    finally:
        process.kill()
        process.wait(timeout=30)
    delivered = [json.loads(body) for _, body, _ in receiver.accepted()]
    assert sorted(d["data"]["check_id"] for d in delivered) == sorted(acknowledged)  # all, and each once


def test_platforms_are_tenants_of_their_webhooks_and_hear_only_of_their_own_events(hook_server):
    """Any platform key listed, read, deleted and re-keyed every other platform's (and the operator's)
    webhooks: rotate-secret handed it the victim's new secret, so it could forge deliveries. The admin got 404
    on brands' webhooks. Each owner now sees its own; the admin sees all; events reach their owner only."""
    server, keys = hook_server
    other_platform = create_api_key(server.settings, Role.platform, platform="marketplace-b")
    mine, theirs, operators = Receiver(), Receiver(), Receiver()
    events = ["check.likely_counterfeit", "scan.completed"]
    with (
        server.client(keys.platform) as a,
        server.client(other_platform) as b,
        server.client(keys.admin) as admin,
        server.client(keys.brand_a) as acme,
    ):
        hook_a = a.post("/v1/webhooks", json={"url": mine.url, "events": events}).json()
        hook_b = b.post("/v1/webhooks", json={"url": theirs.url, "events": events}).json()
        hook_admin = admin.post("/v1/webhooks", json={"url": operators.url, "events": events}).json()
        hook_acme = acme.post(
            "/v1/webhooks", json={"url": Receiver().url, "events": ["review.confirmed"]}
        ).json()
        assert [h["id"] for h in a.get("/v1/webhooks").json()["items"]] == [hook_a["id"]]
        assert [h["id"] for h in b.get("/v1/webhooks").json()["items"]] == [hook_b["id"]]
        assert {h["id"] for h in admin.get("/v1/webhooks").json()["items"]} == {
            hook_a["id"],
            hook_b["id"],
            hook_admin["id"],
            hook_acme["id"],
        }
        for foreign in (
            hook_a,
            hook_admin,
            hook_acme,
        ):  # platform b on everyone else's hooks: 404, nothing changes
            assert b.get(f"/v1/webhooks/{foreign['id']}/deliveries").status_code == 404
            assert b.post(f"/v1/webhooks/{foreign['id']}/rotate-secret", json={}).status_code == 404
            assert b.delete(f"/v1/webhooks/{foreign['id']}").status_code == 404
        assert acme.get(f"/v1/webhooks/{hook_a['id']}/deliveries").status_code == 404
        assert (
            admin.get(f"/v1/webhooks/{hook_acme['id']}/deliveries").status_code == 200
        )  # the admin sees brands' too
        assert len(admin.get("/v1/webhooks").json()["items"]) == 4

        admin.post(
            "/v1/references",
            files={"image": ("f.png", product_photo(1), "image/png")},
            data={"brand": "acme", "label": "counterfeit"},
        )
        checked = a.post("/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(1), "image/jpeg")}).json()
        assert checked["verdict"] == "likely_counterfeit"
        _wait(lambda: mine.accepted() and operators.accepted())
        time.sleep(1.0)  # anything more that would (wrongly) arrive
        assert [json.loads(r[1])["data"]["check_id"] for r in mine.accepted()] == [checked["check_id"]]
        assert len(operators.accepted()) == 1 and theirs.requests == []


def test_a_ping_tests_the_receiver_and_a_past_delivery_is_sent_again(hook_server):
    server, keys = hook_server
    receiver, down = Receiver(), Receiver(failures=1000)
    with server.client(keys.platform) as platform, server.client(keys.brand_a) as acme:
        hook = platform.post("/v1/webhooks", json={"url": receiver.url, "events": ["scan.completed"]}).json()
        ping = platform.post(f"/v1/webhooks/{hook['id']}/ping")
        assert ping.status_code == 201 and ping.json()["event"] == "ping", ping.text
        _wait(lambda: receiver.accepted())
        headers, body, _ = receiver.accepted()[0]
        assert json.loads(body)["data"] == {"webhook_id": hook["id"]} and _verify(
            hook["secret"], headers, body
        )

        # The receiver lost it: the same payload again, as a new delivery (a new id to dedupe on).
        again = platform.post(f"/v1/webhooks/{hook['id']}/deliveries/{ping.json()['id']}/redeliver")
        assert again.status_code == 201 and again.json()["id"] != ping.json()["id"]
        _wait(lambda: len(receiver.accepted()) == 2)
        second_headers, second_body, _ = receiver.accepted()[1]
        first, second = json.loads(body), json.loads(second_body)
        assert {k: v for k, v in second.items() if k != "id"} == {k: v for k, v in first.items() if k != "id"}
        assert second_headers["Counterfeit-Delivery"] != headers["Counterfeit-Delivery"]

        assert acme.post(f"/v1/webhooks/{hook['id']}/ping").status_code == 404  # another owner's endpoint
        missing = platform.post(f"/v1/webhooks/{hook['id']}/deliveries/dlv_{'0' * 20}/redeliver")
        assert missing.status_code == 404
        failing = platform.post("/v1/webhooks", json={"url": down.url, "events": ["scan.completed"]}).json()
        retrying = platform.post(f"/v1/webhooks/{failing['id']}/ping").json()
        busy = platform.post(f"/v1/webhooks/{failing['id']}/deliveries/{retrying['id']}/redeliver")
        assert busy.status_code == 409  # still being retried
