"""Two real platforms share known fakes and repeat-infringer sellers through a signed pull feed.

Platform A (its own process, data directory, keys) confirms counterfeit listings; platform B pulls
A's feed with `counterfeit exchange pull` and a listing on B by a seller with the same e-mail under
another shop name gets the raised risk — while A's raw e-mail never reaches B's database or logs.
"""

from __future__ import annotations

import json
import subprocess
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from index.photos import packaged_photos
from service.db.models import Role
from service.exchange.signals import generate_keypair
from tests.helpers import background_http, create_api_key, free_port, make_settings, png_bytes, reply, sql
from tests.service.cli.test_cli import run_cli
from tests.service.exchange.test_signals import _reupload
from tests.system.test_durability import _start_process

K_OLD, K_NEW = "o" * 40, "n" * 40  # consortium keys (≥ 32 bytes)
EMAIL = "Fake.Seller+shop9@Example.com"  # A's seller; B's seller uses another spelling of the same mailbox
OTHER_EMAIL = "someone.else@example.org"


class TamperingProxy:
    """Forwards feed requests to A, changing the answer as ``mode`` says (a man in the middle, a replay)."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.mode = "pass"
        self.replay: dict | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                answer = httpx.get(
                    proxy.upstream + self.path, headers={"Authorization": self.headers["Authorization"]}
                )
                page = answer.json()
                if proxy.mode == "tamper_entry":
                    page["entries"][0]["data"]["pdq"] = "f" * 64
                elif proxy.mode == "tamper_envelope":
                    page["has_more"] = not page["has_more"]
                elif proxy.mode == "replay":
                    page = proxy.replay
                reply(self, answer.status_code, json.dumps(page).encode(), "application/json")

            def log_message(self, *args):
                pass

        self.server, self.url = background_http(Handler)


def _listing(client, photo: bytes, **fields) -> dict:
    response = client.post(
        "/v1/listings/check", files=[("images", ("p.jpg", photo, "image/jpeg"))], data=fields
    )
    assert response.status_code == 200, response.text
    return response.json()


def _pull(settings_b, **env) -> subprocess.CompletedProcess:
    return run_cli(settings_b, "exchange", "pull", extra_env=env)


def _cursor(settings) -> int:
    return sql(settings, "SELECT cursor FROM exchange_cursors WHERE issuer = 'platform-a'")[0][0]


@pytest.mark.slow  # two server processes
def test_two_platforms_share_known_fakes_and_sellers_through_a_signed_feed(tmp_path):
    private, public = generate_keypair()
    port_a, port_b = free_port(), free_port()
    # A is mid-rotation (old and new consortium key); B already dropped the old one: the overlap keeps matches.
    settings_a = make_settings(
        tmp_path / "a",
        signal_issuer="platform-a",
        signal_private_key=private,
        consortium_keys={"2026a": K_OLD, "2026b": K_NEW},
    )
    exchange_key = create_api_key(settings_a, Role.exchange)
    peer = {"url": f"http://127.0.0.1:{port_a}", "api_key": exchange_key}
    settings_b = make_settings(
        tmp_path / "b",
        signal_issuer="platform-b",
        consortium_keys={"2026b": K_NEW},
        trusted_signal_issuers={"platform-a": public},
        exchange_peers={"platform-a": peer},
    )
    a_admin, a_platform = create_api_key(settings_a, Role.admin), create_api_key(settings_a, Role.platform)
    b_platform, b_acme, b_globex = (
        create_api_key(settings_b, Role.platform),
        create_api_key(settings_b, Role.brand, "acme"),
        create_api_key(settings_b, Role.brand, "globex"),
    )
    photos = packaged_photos()
    coffee, rocket = _reupload(photos["coffee"]), _reupload(photos["rocket"])
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    process_a, process_b = (
        _start_process(settings_a, port_a, log_a),
        _start_process(settings_b, port_b, log_b),
    )
    try:
        a = httpx.Client(base_url=f"http://127.0.0.1:{port_a}", timeout=60)
        b = httpx.Client(base_url=f"http://127.0.0.1:{port_b}", timeout=60)
        as_key = lambda key: {"Authorization": f"Bearer {key}"}  # noqa: E731
        a.headers.update(as_key(a_admin))
        shared_refs = {}
        for name in ("coffee", "rocket"):
            response = a.post(
                "/v1/references",
                files={"image": (f"{name}.png", png_bytes(photos[name]), "image/png")},
                data={"brand": "acme", "label": "counterfeit", "share_signals": "true", "product": name},
            )
            assert response.status_code == 201, response.text
            shared_refs[name] = response.json()["id"]

        # On A: seller shop-9 sells the fake, a reviewer confirms it; shop-x's listing is later cleared by a review.
        a.headers.update(as_key(a_platform))
        sold = _listing(a, coffee, seller_id="shop-9", marketplace="mkt-a", seller_email=EMAIL)
        assert sold["verdict"] == "likely_counterfeit", sold
        other = _listing(a, rocket, seller_id="shop-x", marketplace="mkt-a", seller_email=OTHER_EMAIL)
        assert other["verdict"] == "likely_counterfeit", other
        a.headers.update(as_key(a_admin))
        confirm = a.post(
            f"/v1/checks/{sold['photos'][0]['result']['check_id']}/review", json={"label": "counterfeit"}
        )
        assert confirm.status_code == 201, confirm.text

        # Only an exchange (or admin) key reads the feed.
        assert a.get("/v1/exchange/feed", headers=as_key(a_platform)).status_code == 403
        assert a.get("/v1/sellers", headers=as_key(exchange_key)).status_code == 403  # and reads nothing else
        first_page = a.get("/v1/exchange/feed", headers=as_key(exchange_key)).json()
        kinds = sorted(
            (e["type"], e["data"].get("status"), e["data"].get("key_id")) for e in first_page["entries"]
        )
        assert kinds == [
            ("pdq", None, None),
            ("pdq", None, None),
            ("seller", "confirmed", "2026a"),
            ("seller", "confirmed", "2026b"),
            ("seller", "likely", "2026a"),
            ("seller", "likely", "2026b"),
        ]

        # B pulls A's feed.
        pulled = _pull(settings_b)
        assert pulled.returncode == 0, pulled.stderr
        assert "applied=6" in pulled.stdout and "skipped=0" in pulled.stdout, pulled.stdout
        assert _cursor(settings_b) == first_page["next_cursor"]
        again = _pull(settings_b)  # nothing new: resumes from the cursor, applies nothing twice
        assert again.returncode == 0 and "applied=0" in again.stdout, again.stdout

        # A listing on B by a seller with the same mailbox (another shop name, another spelling) gets the risk.
        b.headers.update(as_key(b_platform))
        deadline = time.monotonic() + 10  # B's server reloads the shared hashes within a poll
        while (
            b.post("/v1/check", files={"image": ("q.jpg", coffee, "image/jpeg")}).json()["verdict"]
            != "likely_counterfeit"
        ):
            assert time.monotonic() < deadline, "B never matched A's shared hash"
            time.sleep(0.3)
        listing = _listing(
            b, coffee, seller_id="new-shop", marketplace="mkt-b", seller_email="fake.seller@example.COM"
        )
        assert listing["verdict"] == "likely_counterfeit", listing  # A's shared hash matches on B
        assert listing["photos"][0]["result"]["evidence"][0]["shared_by"] == "platform-a"
        [shared] = listing["seller"]["shared"]
        assert (shared["shared_by"], shared["brand"], shared["status"], shared["via"]) == (
            "platform-a",
            "acme",
            "confirmed",
            ["email"],
        )
        assert listing["seller"]["risk"] > 0.4 and listing["seller"]["listings"] == 0
        seller_factor = next(f for f in listing["factors"] if f["factor"] == "seller_risk")
        assert "shared_by: platform-a" in seller_factor["detail"]
        innocent = _listing(
            b, coffee, seller_id="good-shop", marketplace="mkt-b", seller_email="good@example.net"
        )
        assert innocent["seller"] is None  # only the matching identifier carries the report

        # Brand scoping on B: acme sees A's report about its brand, globex sees nothing of it.
        assert (
            b.get("/v1/sellers/mkt-b/new-shop", headers=as_key(b_acme)).json()["shared"][0]["shared_by"]
            == "platform-a"
        )
        assert b.get("/v1/sellers/mkt-b/new-shop", headers=as_key(b_globex)).status_code == 404
        ranked = b.get("/v1/sellers", headers=as_key(b_platform)).json()["items"]
        assert ranked[0]["seller_id"] == "new-shop" and ranked[0]["shared"]

        # Withdrawals: A deletes the rocket reference and a review clears shop-x; B's next pull drops both.
        assert a.delete(f"/v1/references/{shared_refs['rocket']}").status_code == 200
        clear = a.post(
            f"/v1/checks/{other['photos'][0]['result']['check_id']}/review", json={"label": "authentic"}
        )
        assert clear.status_code == 201, clear.text
        pulled = _pull(settings_b)
        assert pulled.returncode == 0 and "withdrawn=3" in pulled.stdout, pulled.stdout  # 1 hash + 2 key ids
        assert sql(settings_b, "SELECT product FROM shared_signals WHERE issuer = 'platform-a'") == [
            ("coffee",)
        ]
        assert sql(settings_b, "SELECT DISTINCT status FROM shared_seller_signals") == [("confirmed",)]

        # A tampered entry is skipped and reported; the rest of the page and the feed go on.
        proxy = TamperingProxy(f"http://127.0.0.1:{port_a}")
        via_proxy = {"COUNTERFEIT_EXCHANGE_PEERS": json.dumps({"platform-a": {**peer, "url": proxy.url}})}
        a.headers.update(as_key(a_admin))
        response = a.post(
            "/v1/references",
            files={"image": ("h.png", png_bytes(photos["horse"]), "image/png")},
            data={"brand": "acme", "label": "counterfeit", "share_signals": "true", "product": "horse"},
        )
        assert response.status_code == 201
        proxy.mode = "tamper_envelope"
        cursor = _cursor(settings_b)
        refused = _pull(settings_b, **via_proxy)
        assert refused.returncode == 1 and "signature does not verify" in refused.stdout, refused.stdout
        assert _cursor(settings_b) == cursor  # nothing of a refused page applies
        proxy.mode = "tamper_entry"
        skipped = _pull(settings_b, **via_proxy)
        assert skipped.returncode == 0 and "skipped=1" in skipped.stdout and "applied=0" in skipped.stdout, (
            skipped.stdout
        )
        assert "signature does not verify" in skipped.stderr
        assert _cursor(settings_b) > cursor and sql(
            settings_b, "SELECT count(*) FROM shared_signals WHERE product = 'horse'"
        ) == [(0,)]
        assert sql(settings_b, "SELECT skipped_entries FROM exchange_cursors")[0][0] == 1

        # A replayed old page (validly signed, but not at B's cursor) is refused.
        proxy.mode, proxy.replay = "replay", first_page
        replayed = _pull(settings_b, **via_proxy)
        assert replayed.returncode == 1 and "replayed page" in replayed.stdout, replayed.stdout

        # Untrusted: an issuer B has no key for, or pages A signed claimed under another trusted key.
        stranger_private, stranger_public = generate_keypair()
        untrusted = _pull(
            settings_b, COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS=json.dumps({"platform-a": stranger_public})
        )
        assert untrusted.returncode == 1 and "does not verify with platform-a's key" in untrusted.stdout, (
            untrusted.stdout
        )
        unknown = _pull(settings_b, COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS="{}")
        assert unknown.returncode == 1 and "not in COUNTERFEIT_TRUSTED_SIGNAL_ISSUERS" in unknown.stdout
        status = run_cli(settings_b, "exchange", "status")
        assert "last_error=PageRefused" in status.stdout, status.stdout

        # Direct pulls go on: the feed did not stall behind the corrupt entry.
        proxy.server.shutdown()
        response = a.post(
            "/v1/references",
            files={"image": ("c.png", png_bytes(photos["camera"]), "image/png")},
            data={"brand": "acme", "label": "counterfeit", "share_signals": "true", "product": "camera"},
        )
        assert response.status_code == 201
        resumed = _pull(settings_b)
        assert resumed.returncode == 0 and "applied=1" in resumed.stdout, resumed.stdout
        assert sql(settings_b, "SELECT count(*) FROM shared_signals WHERE product = 'camera'") == [(1,)]
    finally:
        for process in (process_a, process_b):
            process.terminate()
            process.wait(timeout=30)

    # A's raw e-mail (any spelling) is nowhere on B: not in its database files, not in its logs; nor on A.
    needles = [
        spelling.encode() for spelling in (EMAIL, EMAIL.lower(), "fake.seller@example.com", "fake.seller")
    ]
    if settings_b.resolved_database_url.startswith("sqlite"):
        for path in (tmp_path / "b").glob("counterfeit.db*"):
            assert not any(n in path.read_bytes().lower() for n in needles), path
        for path in (tmp_path / "a").glob("counterfeit.db*"):
            assert not any(n in path.read_bytes().lower() for n in needles), path
    else:
        dump = json.dumps(
            [
                sql(settings_b, f"SELECT * FROM {t}")
                for t in ("shared_seller_signals", "seller_identifiers", "listings", "audit_events", "checks")
            ],
            default=str,
        ).lower()
        assert not any(n.decode() in dump for n in needles)
    for log in (log_a, log_b):
        assert not any(n in log.read_bytes().lower() for n in needles), log.read_text()[-2000:]


def test_seller_entries_expire_into_tombstones_and_the_feed_pages(tmp_path, keys_for):
    from tests.helpers import running

    private, _ = generate_keypair()
    settings = make_settings(
        tmp_path / "a",
        signal_private_key=private,
        consortium_keys={"k1": K_OLD},
        exchange_seller_ttl_days=3 / 86400,
        exchange_page_size=2,
    )
    keys = keys_for(settings)
    photos = packaged_photos()
    with running(settings) as server, server.client(keys.admin) as admin:
        assert (
            admin.post(
                "/v1/references",
                data={"brand": "acme", "label": "counterfeit", "share_signals": "true"},
                files={"image": ("c.png", png_bytes(photos["coffee"]), "image/png")},
            ).status_code
            == 201
        )
        for seller, email in (("s1", "one@example.com"), ("s2", "two@example.com")):
            listing = _listing(
                admin, _reupload(photos["coffee"]), seller_id=seller, marketplace="m", seller_email=email
            )
            assert listing["verdict"] == "likely_counterfeit"
        pages, cursor = [], 0
        while True:  # 3 entries in pages of 2, each envelope naming its own seqs
            page = admin.get("/v1/exchange/feed", params={"since": cursor}).json()
            pages.append([(e["type"], e["op"]) for e in page["entries"]])
            assert page["seqs"] == [e["seq"] for e in page["entries"]] and page["since"] == cursor
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert [len(p) for p in pages] == [2, 1] and sorted(sum(pages, [])) == [
            ("pdq", "add"),
            ("seller", "add"),
            ("seller", "add"),
        ]
        time.sleep(3.5)  # past the sellers' expiry: the next read publishes their tombstones, once
        expired = admin.get("/v1/exchange/feed", params={"since": cursor}).json()
        assert (
            sorted((e["type"], e["op"], e["data"]) for e in expired["entries"])
            == [("seller", "withdraw", None)] * 2
        )
        assert (
            admin.get("/v1/exchange/feed", params={"since": expired["next_cursor"]}).json()["entries"] == []
        )


def test_a_test_purchase_is_shared_as_confirmed_when_the_brand_opts_in(tmp_path, keys_for):
    from tests.helpers import product_photo, running

    private, _ = generate_keypair()
    settings = make_settings(tmp_path / "a", signal_private_key=private, consortium_keys={"k1": K_OLD})
    keys = keys_for(settings)
    with running(settings) as server, server.client(keys.brand_a) as acme:
        for order, (seed, share) in enumerate(((21, "true"), (22, "false"))):
            recorded = acme.post(
                "/v1/test-purchases",
                data={
                    "platform": "default",
                    "listing_id": f"L{order}",
                    "marketplace": "m",
                    "seller_id": f"s{order}",
                    "seller_email": f"seller{order}@example.com",
                    "order_reference": f"O{order}",
                    "ordered_on": "2026-11-01",
                    "received_on": "2026-11-05",
                    "outcome": "counterfeit_confirmed",
                    "examiner_note": "fake",
                    "share_signals": share,
                },
                files=[("images", ("i.png", product_photo(seed), "image/png"))],
            )
            assert recorded.status_code == 201, recorded.text
        with server.client(keys.admin) as admin:
            entries = admin.get("/v1/exchange/feed").json()["entries"]
    pdq = [e["data"] for e in entries if e["type"] == "pdq"]
    sellers = sorted(e["data"]["status"] for e in entries if e["type"] == "seller")
    assert len(pdq) == 1 and pdq[0]["status"] == "confirmed" and pdq[0]["provenance"] == "test_purchase"
    assert sellers == ["confirmed", "confirmed"]  # an examined item is a confirmed fact about its seller
