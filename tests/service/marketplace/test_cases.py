"""Seller networks and enforcement case packages over HTTP, and `counterfeit case verify` on what came back."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from service.db.models import Role
from service.exchange.signals import generate_keypair
from service.marketplace.cases import public_key_of
from tests.helpers import create_api_key, make_settings, product_photo, resized_jpeg_copy, running
from tests.service.cli.test_cli import run_cli
from tests.service.marketplace.test_complaints import FAKE, UNRELATED, _file, _register

SECRET_EMAIL, SECRET_PHONE = "ring-boss@example.com", "+4915112345678"


class World:
    def __init__(self, server, settings):
        self.settings = settings
        self.private, self.public = settings.signal_private_key, public_key_of(settings.signal_private_key)
        roles = {
            "admin": (Role.admin, None, None),
            "platform_a": (Role.platform, None, None),
            "platform_b": (Role.platform, None, "market-b"),
            "acme": (Role.brand, "acme", None),
        }
        self.clients = {
            name: server.client(create_api_key(settings, role, brand, platform=platform))
            for name, (role, brand, platform) in roles.items()
        }

    def __getattr__(self, name):
        return self.clients[name]

    def listing(self, client, seller: str, seed: int, marketplace: str = "mkt", **identifiers):
        response = client.post(
            "/v1/listings/check",
            data={
                "listing_id": f"L-{seller}",
                "marketplace": marketplace,
                "seller_id": seller,
                **identifiers,
            },
            files=[("images", ("p.jpg", resized_jpeg_copy(seed), "image/jpeg"))],
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def world(tmp_path):
    private, _ = generate_keypair()
    settings = make_settings(
        tmp_path / "data",
        signal_private_key=private,
        consortium_keys={"k1": "k" * 40},
        exchange_peers={"market-x": {"url": "http://127.0.0.1:9", "api_key": "x", "types": ["seller"]}},
    )
    with running(settings) as server:
        w = World(server, settings)
        _register(w.admin, FAKE)
        # shop-1 and shop-2 share an e-mail; shop-2 and shop-3 a phone: shop-3 is two hops from shop-1.
        w.listing(w.platform_a, "shop-1", FAKE, seller_email=SECRET_EMAIL)
        w.listing(w.platform_a, "shop-2", UNRELATED, seller_email=SECRET_EMAIL, seller_phone=SECRET_PHONE)
        w.listing(w.platform_a, "shop-3", UNRELATED, marketplace="other", seller_phone=SECRET_PHONE)
        w.listing(w.platform_a, "shop-4", FAKE, seller_email="someone-else@example.com")
        w.listing(
            w.platform_b, "shop-5", FAKE, seller_email=SECRET_EMAIL
        )  # platform B's: never in A's network
        complaint = _file(w.acme, seeds=(FAKE,), listing_id="L-shop-1", seller_id="shop-1").json()
        w.platform_a.post(
            f"/v1/complaints/{complaint['id']}/decision", json={"outcome": "upheld", "action": "removed"}
        )
        purchase = w.acme.post(
            "/v1/test-purchases",
            data={
                "platform": "default",
                "listing_id": "L-shop-3",
                "marketplace": "other",
                "seller_id": "shop-3",
                "order_reference": "O-1",
                "ordered_on": "2026-11-01",
                "received_on": "2026-11-04",
                "outcome": "counterfeit_confirmed",
                "examiner_note": "counterfeit",
            },
            files=[("images", ("i.png", product_photo(31), "image/png"))],
        )
        assert purchase.status_code == 201, purchase.text
        try:
            yield w
        finally:
            for client in w.clients.values():
                client.close()


def _sellers(graph) -> dict[str, int]:
    return {n["seller_id"]: n["hop"] for n in graph["nodes"] if n["type"] == "seller"}


def test_the_network_follows_shared_identifiers_hop_by_hop_within_the_tenant(world):
    w = world
    one_hop = w.platform_a.get("/v1/sellers/mkt/shop-1/network", params={"hops": 1}).json()
    assert _sellers(one_hop) == {"shop-1": 0, "shop-2": 1}
    graph = w.platform_a.get("/v1/sellers/mkt/shop-1/network", params={"hops": 3}).json()
    assert _sellers(graph) == {"shop-1": 0, "shop-2": 1, "shop-3": 2}  # across marketplaces; not B's shop-5
    assert sorted((e["source"], e["target"], tuple(e["via"])) for e in graph["edges"]) == [
        ("seller:mkt/shop-1", "seller:mkt/shop-2", ("email",)),
        ("seller:mkt/shop-2", "seller:other/shop-3", ("phone",)),
    ]
    assert SECRET_EMAIL not in json.dumps(graph)
    assert w.platform_b.get("/v1/sellers/mkt/shop-1/network").status_code == 404
    assert _sellers(w.platform_b.get("/v1/sellers/mkt/shop-5/network").json()) == {"shop-5": 0}
    assert w.acme.get("/v1/sellers/mkt/shop-1/network").status_code == 403
    assert w.platform_a.get("/v1/sellers/mkt/shop-1/network", params={"hops": 9}).status_code == 422


def test_a_case_package_is_signed_complete_free_of_raw_identifiers_and_verifiable(world, tmp_path):
    w = world
    response = w.platform_a.get("/v1/sellers/mkt/shop-1/case", params={"hops": 2})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert {"manifest.json", "network.json", "network.png", "timeline.json"} <= set(names)
    dossiers = sorted(n for n in names if n.startswith("sellers/"))
    assert len(dossiers) == 3
    first = json.loads(archive.read(dossiers[0]))
    assert first["seller_id"] == "shop-1" and first["record"]["confirmed_counterfeit"] == 1
    assert first["listings"][0]["checks"][0]["evidence"] and first["complaints"][0]["state"] == "upheld"
    third = json.loads(archive.read(dossiers[2]))
    assert third["test_purchases"][0]["outcome"] == "counterfeit_confirmed"
    photos = [n for n in names if n.startswith("photos/")]
    assert len(photos) >= 2  # the complaint's and the test purchase's photos (kept as evidence)
    assert archive.read("network.png").startswith(b"\x89PNG")
    events = [e["event"] for e in json.loads(archive.read("timeline.json"))]
    assert {"listing.checked", "complaint.filed", "complaint.upheld", "test_purchase.recorded"} <= set(events)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["linked_by"] == ["email", "phone"] and manifest["public_key"] == w.public
    everything = b"".join(archive.read(n) for n in names)
    assert SECRET_EMAIL.encode() not in everything and SECRET_PHONE.encode() not in everything

    package = tmp_path / "case.zip"
    package.write_bytes(response.content)
    verified = run_cli(w.settings, "case", "verify", str(package), "--public-key", w.public)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["valid"] is True

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as out:
        for name in names:
            data = archive.read(name)
            out.writestr(name, data.replace(b'"removed"', b'"warned"') if name == dossiers[0] else data)
    refused = run_cli(w.settings, "case", "verify", str(tampered), "--public-key", w.public)
    assert refused.returncode == 1 and f"{dossiers[0]} was changed" in refused.stderr
    _, stranger = generate_keypair()
    wrong_key = run_cli(w.settings, "case", "verify", str(package), "--public-key", stranger)
    assert wrong_key.returncode == 1 and "signature" in wrong_key.stderr

    assert w.platform_b.get("/v1/sellers/mkt/shop-1/case").status_code == 404


def test_without_a_signing_key_no_package_is_made(tmp_path):
    settings = make_settings(tmp_path / "data")
    with running(settings) as server, server.client(create_api_key(settings, Role.platform)) as platform:
        listing = platform.post(
            "/v1/listings/check",
            data={"marketplace": "mkt", "seller_id": "s"},
            files=[("images", ("p.jpg", resized_jpeg_copy(FAKE), "image/jpeg"))],
        )
        assert listing.status_code == 200
        response = platform.get("/v1/sellers/mkt/s/case")
        assert response.status_code == 409 and response.json()["error"]["code"] == "no_signing_key"


def test_a_peers_shared_report_about_an_identifier_in_the_network_joins_it(world):
    """What a trusted peer's feed said of one of the network's identifiers (here: shop-3's phone) is a node."""
    from service.exchange.identifiers import IdentifierKeying
    from tests.helpers import sql

    w = world
    [phone] = IdentifierKeying(w.settings.consortium_key_bytes()).key("phone", SECRET_PHONE)
    sql(
        w.settings,
        "INSERT INTO shared_seller_signals (issuer, entry_key, brand, kind, key_id, digest, status, reason, seq, "
        "imported_at) VALUES ('market-x', 'seller:acme:k1:x', 'acme', 'phone', :key_id, :digest, 'confirmed', "
        "'2 confirmed listings of acme', 7, CURRENT_TIMESTAMP)",
        key_id=phone.key_id,
        digest=phone.digest,
    )
    graph = w.platform_a.get("/v1/sellers/mkt/shop-1/network", params={"hops": 2}).json()
    [peer] = [n for n in graph["nodes"] if n["type"] == "peer"]
    assert (peer["issuer"], peer["brand"], peer["status"]) == ("market-x", "acme", "confirmed")
    linked = sorted(e["source"] for e in graph["edges"] if e["target"] == peer["id"])
    assert linked == ["seller:mkt/shop-2", "seller:other/shop-3"]  # both carry that phone
    assert phone.digest not in json.dumps(graph)
