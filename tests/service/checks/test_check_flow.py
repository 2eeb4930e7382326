"""The product loop over HTTP: register references, check copies, delete, idempotency."""

from __future__ import annotations

from tests.helpers import product_photo, resized_jpeg_copy

FAKE_SEED, GENUINE_SEED, UNRELATED_SEED = 1, 4, 7


def register(client, seed: int, label: str, brand: str = "acme", **fields):
    return client.post(
        "/v1/references",
        files={"image": (f"{seed}.png", product_photo(seed), "image/png")},
        data={"brand": brand, "label": label, **fields},
    )


def check(client, image: bytes, **fields):
    response = client.post("/v1/check", files={"image": ("q.jpg", image, "image/jpeg")}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def test_copies_of_references_get_their_verdicts_and_evidence(server, keys, admin):
    fake = register(admin, FAKE_SEED, "counterfeit", product="bag-1", metadata='{"listing": "x1"}')
    genuine = register(admin, GENUINE_SEED, "authentic", product="bag-1")
    assert fake.status_code == 201 and genuine.status_code == 201
    assert fake.json()["metadata"] == {"listing": "x1"}

    with server.client(keys.platform) as platform:
        result = check(platform, resized_jpeg_copy(FAKE_SEED))
        assert result["verdict"] == "likely_counterfeit"
        assert result["counterfeit_probability"] > 0.7
        assert result["evidence"][0]["reference_id"] == fake.json()["id"]
        assert result["evidence"][0]["label"] == "counterfeit"
        assert result["evidence"][0]["similarity"] > 0.9
        assert result["brand"] == "acme"
        assert result["model"]["weights_kind"].startswith("random")

        result = check(platform, resized_jpeg_copy(GENUINE_SEED))
        assert result["verdict"] == "likely_authentic"
        assert result["counterfeit_probability"] < 0.3
        assert result["evidence"][0]["reference_id"] == genuine.json()["id"]

        result = check(platform, resized_jpeg_copy(UNRELATED_SEED))
        assert result["verdict"] == "no_match"  # nothing relevant found: no question for a reviewer
        assert all(e["similarity"] < 0.85 for e in result["evidence"])

        # Brand hint restricts the search to that brand's references (a brand with none is refused: 422).
        register(admin, 40, "authentic", brand="globex")
        hinted = check(platform, resized_jpeg_copy(FAKE_SEED), brand="globex")["evidence"]
        assert hinted and all(e["brand"] == "globex" for e in hinted)


def test_deleted_reference_is_no_longer_evidence(server, keys, admin):
    fake_id = register(admin, FAKE_SEED, "counterfeit").json()["id"]
    with server.client(keys.platform) as platform:
        assert check(platform, resized_jpeg_copy(FAKE_SEED))["evidence"][0]["reference_id"] == fake_id
        assert admin.delete(f"/v1/references/{fake_id}").status_code == 200
        result = check(platform, resized_jpeg_copy(FAKE_SEED))
    assert fake_id not in [e["reference_id"] for e in result["evidence"]]
    assert result["verdict"] == "no_match"
    assert admin.get(f"/v1/references/{fake_id}").status_code == 404
    assert admin.delete(f"/v1/references/{fake_id}").status_code == 404


def test_registration_is_idempotent_and_contradicting_label_conflicts(server, admin):
    first = register(admin, FAKE_SEED, "counterfeit")
    again = register(admin, FAKE_SEED, "counterfeit")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    conflict = register(admin, FAKE_SEED, "authentic")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "label_conflict"
    # Another brand may register the same bytes independently.
    assert register(admin, FAKE_SEED, "authentic", brand="globex").status_code == 201
    info = admin.get("/v1/info").json()
    assert info["references"] == {
        "acme": {"authentic": 0, "counterfeit": 1},
        "globex": {"authentic": 1, "counterfeit": 0},
    }
    assert info["index"]["size"] == 2


def test_listing_filters_and_cursor_pagination(server, admin):
    ids = [
        register(admin, seed, "authentic" if seed % 2 else "counterfeit", product=f"p{seed % 3}").json()["id"]
        for seed in range(20, 27)
    ]
    register(admin, 30, "counterfeit", brand="globex")
    seen, cursor = [], None
    while True:
        params = {"brand": "acme", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/v1/references", params=params).json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    counterfeit = admin.get("/v1/references", params={"label": "counterfeit", "brand": "acme"}).json()[
        "items"
    ]
    assert {i["label"] for i in counterfeit} == {"counterfeit"} and len(counterfeit) == 4
    by_product = admin.get("/v1/references", params={"product": "p0"}).json()["items"]
    assert {i["product"] for i in by_product} == {"p0"}
    assert admin.get("/v1/references", params={"cursor": "!!"}).status_code == 422


def test_reference_image_round_trips(server, admin):
    reference = register(admin, FAKE_SEED, "counterfeit").json()
    response = admin.get(f"/v1/references/{reference['id']}/image")
    assert response.status_code == 200
    assert response.content == product_photo(FAKE_SEED)
    assert response.headers["content-type"] == "image/png"
    assert (reference["width"], reference["height"]) == (256, 256)


def test_health_readiness_docs_and_info(server, keys, admin):
    with server.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json()["status"] == "ready"
        assert anonymous.get("/docs").status_code == 200
        assert "/v1/check" in anonymous.get("/openapi.json").json()["paths"]
    info = admin.get("/v1/info").json()
    assert info["model"]["test_only"] is True
    assert "RANDOM" in info["model"]["warning"]
    assert info["model"]["dimension"] == 64
    assert len(info["model"]["fingerprint"]) == 16


def test_a_mirrored_or_rotated_reupload_of_a_known_fake_is_caught(server, keys, admin):
    """PDQ is not flip-invariant; the query is searched with its 8 dihedral hashes, so a mirrored or
    rotated re-upload of a registered fake still matches it (and says so in the evidence)."""
    import io

    from PIL import Image

    from index.photos import packaged_photos

    def encoded(image: Image.Image, kind: str) -> bytes:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, kind, quality=80)
        return buffer.getvalue()

    photos = packaged_photos()
    fake = photos["coffee"].convert("RGB").resize((480, 320))
    fake_id = admin.post(
        "/v1/references",
        files={"image": ("f.png", encoded(fake, "PNG"), "image/png")},
        data={"brand": "acme", "label": "counterfeit"},
    ).json()["id"]
    register(admin, GENUINE_SEED, "authentic")
    with server.client(keys.platform) as platform:
        for transpose in (
            Image.Transpose.FLIP_LEFT_RIGHT,
            Image.Transpose.ROTATE_90,
            Image.Transpose.TRANSVERSE,
        ):
            result = check(platform, encoded(fake.transpose(transpose).resize((300, 200)), "JPEG"))
            pdq = [e for e in result["evidence"] if e["pdq_distance"] is not None]
            assert pdq and pdq[0]["reference_id"] == fake_id and "pdq" in pdq[0]["signals"], (
                transpose,
                result,
            )
            assert result["verdict"] == "likely_counterfeit", (transpose, result)


def test_a_brand_hint_nobody_registered_is_refused_not_answered_inconclusive(server, keys, admin, settings):
    """brand=nobody used to answer a silent "inconclusive" (and queue nothing anyone would see): a typo."""
    from tests.helpers import product_photo, resized_jpeg_copy, sql

    admin.post(
        "/v1/references",
        files={"image": ("r.png", product_photo(1), "image/png")},
        data={"brand": "acme", "label": "counterfeit"},
    )
    with server.client(keys.platform) as platform:
        photo = {"image": ("q.jpg", resized_jpeg_copy(1), "image/jpeg")}
        refused = platform.post("/v1/check", files=photo, data={"brand": "nobody"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_brand"
        listing = platform.post(
            "/v1/listings/check", files=[("images", photo["image"])], data={"brand": "nobody"}
        )
        assert listing.status_code == 422
        assert sql(settings, "SELECT count(*) FROM checks")[0][0] == 0  # nothing was checked
        assert platform.post("/v1/check", files=photo, data={"brand": "acme"}).json()["brand"] == "acme"
