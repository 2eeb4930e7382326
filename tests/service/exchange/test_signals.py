"""Platforms share known-fake signals (signed PDQ hashes, never images) and act on them."""

from __future__ import annotations

import copy

from PIL import Image

from index.photos import packaged_photos
from service.db.models import Role
from service.exchange.signals import generate_keypair
from tests.helpers import ThreadedServer, create_api_key, jpeg_bytes, make_settings, png_bytes
from tests.service.cli.test_cli import run_cli


def _reupload(image: Image.Image) -> bytes:
    w, h = image.size
    cropped = image.crop((w // 100, h // 100, w - w // 100, h - h // 100)).resize(
        (int(w * 0.7), int(h * 0.7))
    )
    return jpeg_bytes(cropped, quality=60)


def test_signed_bundle_moves_known_fakes_between_platforms(tmp_path):
    private, public = generate_keypair()
    exporter = make_settings(tmp_path / "a", signal_issuer="platform-a", signal_private_key=private)
    importer = make_settings(tmp_path / "b", trusted_signal_issuers={"platform-a": public})
    a_brand, a_other = (
        create_api_key(exporter, Role.brand, "acme"),
        create_api_key(exporter, Role.brand, "globex"),
    )
    b_admin, b_platform = create_api_key(importer, Role.admin), create_api_key(importer, Role.platform)
    photos = packaged_photos()
    server_a, server_b = ThreadedServer(exporter).start(), ThreadedServer(importer).start()
    try:
        with server_a.client(a_brand) as brand:
            for name, label, share in (
                ("coffee", "counterfeit", "true"),
                ("rocket", "counterfeit", "false"),
                ("astronaut", "authentic", "true"),
            ):
                response = brand.post(
                    "/v1/references",
                    files={"image": (f"{name}.png", png_bytes(photos[name]), "image/png")},
                    data={"label": label, "share_signals": share, "product": f"{name}-1"},
                )
                assert response.status_code == 201
            bundle = brand.get("/v1/signals/export", params={"brand": "acme"}).json()
        assert bundle["issuer"] == "platform-a" and bundle["brand"] == "acme" and bundle["signature"]
        assert [s["product"] for s in bundle["signals"]] == ["coffee-1"]  # only shared counterfeits
        assert set(bundle["signals"][0]) == {"sha256", "pdq", "quality", "product"}  # hashes, no pixels
        with server_a.client(a_other) as other:
            assert other.get("/v1/signals/export", params={"brand": "acme"}).status_code == 404

        with server_b.client(b_admin) as admin:
            tampered = copy.deepcopy(bundle)
            tampered["signals"][0]["pdq"] = "0" * 64
            assert (
                admin.post("/v1/signals/import", json=tampered).json()["error"]["code"] == "invalid_signature"
            )
            assert admin.post("/v1/signals/import", json={**bundle, "issuer": "someone"}).status_code == 403
            assert admin.post("/v1/signals/import", json={"format": "nope"}).status_code == 422
            with server_b.client(b_platform) as platform:
                before = platform.post(
                    "/v1/check", files={"image": ("q.jpg", _reupload(photos["coffee"]), "image/jpeg")}
                ).json()
                assert before["verdict"] == "no_match"  # platform B has no references at all
                assert platform.post("/v1/signals/import", json=bundle).status_code == 403  # admins import
            imported = admin.post("/v1/signals/import", json=bundle)
            assert imported.status_code == 200 and imported.json() == {
                "issuer": "platform-a",
                "brand": "acme",
                "imported": 1,
            }
            [event] = admin.get("/v1/audit", params={"action": "signals.import"}).json()[
                "items"
            ]  # rejected ones left none
            assert (event["brand"], event["target"], event["details"]) == (
                "acme",
                "platform-a",
                {"signals": 1},
            )
        with server_b.client(b_platform) as platform:
            result = platform.post(
                "/v1/check", files={"image": ("q.jpg", _reupload(photos["coffee"]), "image/jpeg")}
            ).json()
            unrelated = platform.post(
                "/v1/check", files={"image": ("q.jpg", _reupload(photos["horse"]), "image/jpeg")}
            ).json()
        top = result["evidence"][0]
        assert result["verdict"] == "likely_counterfeit" and result["brand"] == "acme"
        assert top["shared_by"] == "platform-a" and top["reference_id"] is None and "shared" in top["signals"]
        assert top["pdq_distance"] <= 31 and top["product"] == "coffee-1"
        assert unrelated["verdict"] == "no_match"
    finally:
        server_a.stop()
        server_b.stop()


def test_export_needs_a_signing_key_and_keygen_prints_only_the_private_key(server, keys, settings):
    with server.client(keys.brand_a) as brand:
        response = brand.get("/v1/signals/export", params={"brand": "acme"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "signing_not_configured"
    generated = run_cli(settings, "signals-keygen")
    assert (
        generated.returncode == 0 and len(generated.stdout.strip()) == 44 and "Public key" in generated.stderr
    )
