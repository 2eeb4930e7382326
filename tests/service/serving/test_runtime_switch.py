"""Switching a deployment's runtime (COUNTERFEIT_RUNTIME) is a restart, not a reindex: the same data directory
served on torch and then on ONNX Runtime answers the same checks with the same verdicts and evidence."""

from __future__ import annotations

from index.photos import packaged_photos
from service.db.models import Role
from tests.helpers import (
    create_api_key,
    jpeg_bytes,
    make_settings,
    png_bytes,
    product_photo,
    resized_jpeg_copy,
    running,
)


def checks(server, key: str, queries: list[bytes]) -> list[dict]:
    with server.client(key) as client:
        answers = [client.post("/v1/check", files={"image": ("q.jpg", q, "image/jpeg")}) for q in queries]
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    return [answer.json() for answer in answers]


def test_the_same_data_served_on_torch_then_onnx_answers_alike(tmp_path):
    data = tmp_path / "data"
    photos = list(packaged_photos().values())[:4]
    queries = [resized_jpeg_copy(seed) for seed in range(3)] + [jpeg_bytes(p, quality=70) for p in photos[2:]]
    on_torch = make_settings(data, runtime="torch")
    admin = create_api_key(on_torch, Role.admin)
    with running(on_torch) as server, server.client(admin) as client:
        for seed in range(3):
            registered = client.post(
                "/v1/references",
                files={"image": ("r.png", product_photo(seed), "image/png")},
                data={"brand": "acme", "label": "counterfeit" if seed % 2 == 0 else "authentic"},
            )
            assert registered.status_code == 201, registered.text
        for photo in photos[2:]:
            client.post(
                "/v1/references",
                files={"image": ("r.png", png_bytes(photo), "image/png")},
                data={"brand": "acme", "label": "counterfeit"},
            )
        before_info = client.get("/v1/info").json()["model"]
        before = checks(server, admin, queries)
    with running(make_settings(data, runtime="onnx")) as server, server.client(admin) as client:
        after_info = client.get("/v1/info").json()["model"]
        after = checks(server, admin, queries)
    assert (before_info["runtime"], after_info["runtime"]) == ("torch", "onnx")
    assert "likely_counterfeit" in {check["verdict"] for check in before}, before  # copies were found at all
    assert after_info["fingerprint"] == before_info["fingerprint"]  # one embedding space: no reindex
    for old, new in zip(before, after):
        assert new["verdict"] == old["verdict"]
        assert abs(new["counterfeit_probability"] - old["counterfeit_probability"]) < 1e-3
        assert [e["reference_id"] for e in new["evidence"]] == [e["reference_id"] for e in old["evidence"]]
        for e_new, e_old in zip(new["evidence"], old["evidence"]):
            assert abs(e_new["similarity"] - e_old["similarity"]) < 1e-3
