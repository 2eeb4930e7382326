"""Every endpoint × no key / platform / brand A / brand B / admin."""

from __future__ import annotations

import httpx

from service.core.auth import revoke_key
from service.db.models import ApiKey
from service.db.session import make_engine, make_session_factory
from tests.helpers import product_photo, resized_jpeg_copy

CALLERS = ("none", "platform", "brand_a", "brand_b", "admin")


def _client(server, keys, caller) -> httpx.Client:
    return server.client(None if caller == "none" else getattr(keys, caller))


def _register_acme(admin, seed: int) -> int:
    response = admin.post(
        "/v1/references",
        files={"image": ("r.png", product_photo(seed), "image/png")},
        data={"brand": "acme", "label": "counterfeit"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_auth_matrix(server, keys, admin):
    acme_id = _register_acme(admin, 1)
    seeds = iter(range(100, 200))

    def post_reference(c):
        return c.post(
            "/v1/references",
            files={"image": ("n.png", product_photo(next(seeds)), "image/png")},
            data={"brand": "acme", "label": "authentic"},
        )

    def delete_fresh(c):
        return c.delete(f"/v1/references/{_register_acme(admin, next(seeds))}")

    matrix = {
        "register acme": (
            post_reference,
            {"none": 401, "platform": 403, "brand_a": 201, "brand_b": 403, "admin": 201},
        ),
        "list": (
            lambda c: c.get("/v1/references"),
            {"none": 401, "platform": 403, "brand_a": 200, "brand_b": 200, "admin": 200},
        ),
        "get": (
            lambda c: c.get(f"/v1/references/{acme_id}"),
            {"none": 401, "platform": 403, "brand_a": 200, "brand_b": 404, "admin": 200},
        ),
        "get image": (
            lambda c: c.get(f"/v1/references/{acme_id}/image"),
            {"none": 401, "platform": 403, "brand_a": 200, "brand_b": 404, "admin": 200},
        ),
        "delete": (
            delete_fresh,
            {"none": 401, "platform": 403, "brand_a": 200, "brand_b": 404, "admin": 200},
        ),
        "check": (
            lambda c: c.post("/v1/check", files={"image": ("q.jpg", resized_jpeg_copy(1), "image/jpeg")}),
            {"none": 401, "platform": 200, "brand_a": 403, "brand_b": 403, "admin": 200},
        ),
        "info": (
            lambda c: c.get("/v1/info"),
            {"none": 401, "platform": 200, "brand_a": 200, "brand_b": 200, "admin": 200},
        ),
        "healthz": (lambda c: c.get("/healthz"), dict.fromkeys(CALLERS, 200)),
        "readyz": (lambda c: c.get("/readyz"), dict.fromkeys(CALLERS, 200)),
    }
    failures = []
    for name, (call, expected) in matrix.items():
        for caller in CALLERS:
            with _client(server, keys, caller) as client:
                response = call(client)
            if response.status_code != expected[caller]:
                failures.append(
                    f"{name} as {caller}: {response.status_code} != {expected[caller]} ({response.text[:120]})"
                )
            elif response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"code", "message", "request_id"}
                assert error["request_id"] == response.headers["x-request-id"]
    assert not failures, "\n".join(failures)


def test_brands_see_only_their_own_references(server, keys, admin):
    acme_id = _register_acme(admin, 1)
    with server.client(keys.brand_b) as brand_b:
        own = brand_b.post(
            "/v1/references",
            files={"image": ("g.png", product_photo(2), "image/png")},
            data={"label": "authentic"},
        )  # brand defaults to the key's brand
        assert own.status_code == 201 and own.json()["brand"] == "globex"
        listed = brand_b.get("/v1/references").json()["items"]
        assert [item["id"] for item in listed] == [own.json()["id"]]
        assert brand_b.get("/v1/references", params={"brand": "acme"}).status_code == 403
        assert brand_b.get("/v1/info").json()["references"] == {"globex": {"authentic": 1, "counterfeit": 0}}
    assert admin.get(f"/v1/references/{acme_id}").status_code == 200


def test_bad_and_revoked_keys_are_rejected(server, keys, settings):
    with server.client("cfk_not-a-real-key") as client:
        response = client.get("/v1/info")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Basic {keys.admin}"}) as client:
        assert client.get("/v1/info").status_code == 401
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        platform_key = session.query(ApiKey).filter(ApiKey.role == "platform").one()
        assert revoke_key(session, platform_key.id)
    engine.dispose()
    with server.client(keys.platform) as client:
        assert client.get("/v1/info").status_code == 401


def test_brand_keys_do_not_learn_the_size_of_other_brands_banks(server, keys, admin):
    _register_acme(admin, 1)
    with server.client(keys.brand_b) as brand_b:
        info = brand_b.get("/v1/info").json()
    assert "size" not in info["index"] and info["references"] == {}
    assert admin.get("/v1/info").json()["index"]["size"] == 1
