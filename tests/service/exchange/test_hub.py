"""A neutral hub between three platforms, all real processes: A publishes, B and C read the hub's merged feed.

Tampered, replayed and revoked members' pages are refused; withdrawals and revocations reach subscribers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from index.photos import packaged_photos
from service.db.models import Role
from service.exchange.signals import generate_keypair
from tests.helpers import create_api_key, free_port, make_settings, png_bytes, sql
from tests.service.cli.test_cli import run_cli
from tests.service.exchange.test_exchange import EMAIL, K_NEW, _listing
from tests.service.exchange.test_signals import _reupload
from tests.system.test_durability import _start_process


class HubProcess:
    def __init__(self, tmp_path):
        self.private, self.public = generate_keypair()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "COUNTERFEIT_HUB_DATA_DIR": str(tmp_path / "hub"),
            "COUNTERFEIT_HUB_PRIVATE_KEY": self.private,
            "COUNTERFEIT_HUB_NAME": "hub",
        }
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "service", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self) -> None:
        command = [sys.executable, "-m", "service", "hub", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, (
                self.process.stderr.read().decode()
            )
            time.sleep(0.2)

    def stats(self) -> dict[str, dict]:
        listed = self.cli("hub", "members", "list")
        assert listed.returncode == 0, listed.stderr
        return {m["member"]: m for m in json.loads(listed.stdout)}


def _member(hub: HubProcess, name: str, public: str, *extra: str) -> str:
    added = hub.cli("hub", "members", "add", name, "--public-key", public, *extra)
    assert added.returncode == 0, added.stderr
    return added.stdout.strip()


def _shared(settings, table: str) -> int:
    return sql(settings, f"SELECT count(*) FROM {table} WHERE issuer = 'hub'")[0][0]


@pytest.mark.slow  # a hub and three platforms, each its own process
def test_a_hub_relays_one_platforms_signals_to_two_others_and_refuses_what_it_must(tmp_path):
    hub = HubProcess(tmp_path)
    a_private, a_public = generate_keypair()
    port_a, port_b, port_c = free_port(), free_port(), free_port()
    keys = {"2026b": K_NEW}
    settings_a = make_settings(
        tmp_path / "a", signal_issuer="platform-a", signal_private_key=a_private, consortium_keys=keys
    )
    a_exchange = create_api_key(settings_a, Role.exchange)  # the key A gave the hub to pull its feed
    token_a = _member(
        hub,
        "platform-a",
        a_public,
        "--brand",
        "acme",
        "--feed-url",
        f"http://127.0.0.1:{port_a}",
        "--feed-api-key",
        a_exchange,
    )
    subscribers = {}
    for name in ("platform-b", "platform-c"):
        token = _member(hub, name, generate_keypair()[1], "--anonymous")
        subscribers[name] = make_settings(
            tmp_path / name,
            signal_issuer=name,
            consortium_keys=keys,
            trusted_signal_issuers={"hub": hub.public},
            exchange_peers={"hub": {"url": hub.url, "api_key": token}},
        )
    settings_b, settings_c = subscribers["platform-b"], subscribers["platform-c"]
    a_admin, a_platform = create_api_key(settings_a, Role.admin), create_api_key(settings_a, Role.platform)
    b_platform, c_platform = (
        create_api_key(settings_b, Role.platform),
        create_api_key(settings_c, Role.platform),
    )
    photos = packaged_photos()
    coffee = _reupload(photos["coffee"])
    hub.start()
    processes = [
        _start_process(s, p, tmp_path / f"{p}.log")
        for s, p in ((settings_a, port_a), (settings_b, port_b), (settings_c, port_c))
    ]
    try:
        a = httpx.Client(
            base_url=f"http://127.0.0.1:{port_a}", timeout=60, headers={"Authorization": f"Bearer {a_admin}"}
        )
        references = {}
        for brand, name in (("acme", "coffee"), ("globex", "rocket")):  # A may publish about acme only
            response = a.post(
                "/v1/references",
                files={"image": (f"{name}.png", png_bytes(photos[name]), "image/png")},
                data={"brand": brand, "label": "counterfeit", "share_signals": "true"},
            )
            assert response.status_code == 201, response.text
            references[name] = response.json()["id"]
        a.headers["Authorization"] = f"Bearer {a_platform}"
        assert _listing(a, coffee, seller_id="shop-9", marketplace="mkt-a", seller_email=EMAIL)[
            "verdict"
        ] == ("likely_counterfeit")

        pushed = run_cli(settings_a, "exchange", "push", "--hub-url", hub.url, "--api-key", token_a)
        assert pushed.returncode == 0, pushed.stderr
        stats = hub.stats()["platform-a"]
        assert stats["published"] == 2 and stats["entries_refused"] == 1, (
            stats
        )  # acme's pdq and seller; not globex

        # B and C read the hub as one exchange peer; B matches A's known fake, C sees the seller's report.
        for settings in (settings_b, settings_c):
            pulled = run_cli(settings, "exchange", "pull")
            assert pulled.returncode == 0 and "applied=2" in pulled.stdout, pulled.stdout + pulled.stderr
        b = httpx.Client(
            base_url=f"http://127.0.0.1:{port_b}",
            timeout=60,
            headers={"Authorization": f"Bearer {b_platform}"},
        )
        deadline = time.monotonic() + 15
        while (
            b.post("/v1/check", files={"image": ("q.jpg", coffee, "image/jpeg")}).json()["verdict"]
            != "likely_counterfeit"
        ):
            assert time.monotonic() < deadline, "B never matched the hub's shared hash"
            time.sleep(0.3)
        c = httpx.Client(
            base_url=f"http://127.0.0.1:{port_c}",
            timeout=60,
            headers={"Authorization": f"Bearer {c_platform}"},
        )
        listing = _listing(
            c, coffee, seller_id="other-name", marketplace="mkt-c", seller_email="fake.seller@example.COM"
        )
        [shared] = listing["seller"]["shared"]
        assert shared["shared_by"] == "hub" and "platform-a" in shared["reason"], shared

        # Refused whole: a replayed page (the hub is past it) and one whose envelope was altered.
        first = a.get(
            "/v1/exchange/feed", params={"since": 0}, headers={"Authorization": f"Bearer {a_exchange}"}
        ).json()
        hub_client = httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token_a}"}, timeout=30
        )
        replayed = hub_client.post("/v1/hub/pages", json=first)
        assert replayed.status_code == 409 and "replayed" in replayed.json()["error"]["message"]
        cursor = hub_client.get("/v1/hub/cursor").json()["cursor"]
        _listing(a, coffee, seller_id="shop-10", marketplace="mkt-a", seller_email="another@example.com")
        fresh = a.get(
            "/v1/exchange/feed", params={"since": cursor}, headers={"Authorization": f"Bearer {a_exchange}"}
        ).json()
        altered = {**fresh, "has_more": not fresh["has_more"]}
        assert hub_client.post("/v1/hub/pages", json=altered).status_code == 409
        # An entry altered inside a genuine page: that entry is refused, the rest apply.
        tampered = json.loads(json.dumps(fresh))
        tampered["entries"][0]["data"]["status"] = "confirmed"
        answer = hub_client.post("/v1/hub/pages", json=tampered)
        assert answer.status_code == 200 and "signature" in answer.json()["refused"][0], answer.text
        assert hub.stats()["platform-a"]["pages_refused"] == 2

        # A withdrawal reaches subscribers: A deletes its reference, the hub pulls A's feed, B pulls the hub.
        a.headers["Authorization"] = f"Bearer {a_admin}"
        assert a.delete(f"/v1/references/{references['coffee']}").status_code == 200
        pulled_by_hub = hub.cli("hub", "pull", "--name", "platform-a")
        assert pulled_by_hub.returncode == 0 and '"withdrawn": 1' in pulled_by_hub.stdout, (
            pulled_by_hub.stdout
        )
        assert run_cli(settings_b, "exchange", "pull").returncode == 0
        assert (
            _shared(settings_b, "shared_signals") == 0 and _shared(settings_b, "shared_seller_signals") == 1
        )

        # Revoking A withdraws everything it reported; its pages are refused from then on.
        assert hub.cli("hub", "members", "revoke", "platform-a").returncode == 0
        assert run_cli(settings_c, "exchange", "pull").returncode == 0
        assert _shared(settings_c, "shared_seller_signals") == 0
        refused = run_cli(settings_a, "exchange", "push", "--hub-url", hub.url, "--api-key", token_a)
        assert refused.returncode == 1 and "revoked" in refused.stderr
        assert hub.stats()["platform-b"]["published"] == 0 and hub.stats()["platform-b"]["anonymous"] is True
    finally:
        for process in [*processes, hub.process]:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
