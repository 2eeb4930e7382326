"""Brand policies and review feedback over HTTP."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from tests.helpers import product_photo, resized_jpeg_copy


def _check(client, data: bytes, **fields) -> dict:
    response = client.post("/v1/check", files={"image": ("q.png", data, "image/png")}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def test_confirmed_counterfeit_joins_the_bank_when_the_policy_says_so(server, keys, admin):
    admin.post(
        "/v1/references",
        files={"image": ("g.png", product_photo(4), "image/png")},
        data={"brand": "acme", "label": "authentic"},
    )
    listing = product_photo(7)  # unrelated to anything registered
    with server.client(keys.platform) as platform:
        unkept = _check(platform, listing, brand="acme")  # before the policy: the image is not kept
    assert (
        admin.post(f"/v1/checks/{unkept['check_id']}/review", json={"label": "counterfeit"}).json()[
            "added_reference_id"
        ]
        is None
    )
    assert (
        admin.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": True}).status_code == 200
    )
    with server.client(keys.platform) as platform:
        first = _check(platform, listing, brand="acme")
    assert first["verdict"] == "no_match" and first["brand"] == "acme"

    with server.client(keys.brand_b) as other_brand:
        response = other_brand.post(f"/v1/checks/{first['check_id']}/review", json={"label": "counterfeit"})
        assert response.status_code == 404  # globex cannot see, let alone review, acme's checks
    with server.client(keys.brand_a) as brand, server.client(keys.brand_b) as globex:
        # A brand sets its own flag (keep checked photos, add confirmed fakes) but not the thresholds platforms
        # act on, nor another brand's policy.
        thresholds = {"counterfeit_threshold": 0.9, "authentic_threshold": 0.2}
        refused = brand.put(
            "/v1/brands/acme/policy", json={**thresholds, "auto_add_confirmed_counterfeits": True}
        )
        assert (
            refused.status_code == 403 and refused.json()["error"]["code"] == "thresholds_are_the_operators"
        )
        assert (
            globex.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": False}).status_code
            == 404
        )
        assert (
            brand.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": False}).status_code
            == 200
        )
        assert (
            brand.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": True}).status_code
            == 200
        )
        assert brand.get("/v1/brands/acme/policy").json()["auto_add_confirmed_counterfeits"] is True
        review = brand.post(
            f"/v1/checks/{first['check_id']}/review", json={"label": "counterfeit", "note": "test buy"}
        )
        assert review.status_code == 201, review.text
        added = review.json()["added_reference_id"]
        assert added is not None
        assert brand.get(f"/v1/references/{added}").json()["source"] == f"review:{first['check_id']}"
        bad = brand.post(f"/v1/checks/{first['check_id']}/review", json={"label": "maybe"})
        assert bad.status_code == 422

    with server.client(keys.platform) as platform:
        again = _check(platform, listing, brand="acme")
        copy = _check(platform, resized_jpeg_copy(7), brand="acme")
    assert again["verdict"] == "likely_counterfeit" and again["evidence"][0]["reference_id"] == added
    assert copy["verdict"] == "likely_counterfeit"
    assert admin.post("/v1/checks/chk_missing/review", json={"label": "authentic"}).status_code == 404


def test_review_without_the_policy_only_records(server, keys, admin):
    admin.post(  # acme has a reference (a hint for a brand with none is refused), but no auto-add policy
        "/v1/references",
        files={"image": ("g.png", product_photo(30), "image/png")},
        data={"brand": "acme", "label": "authentic"},
    )
    with server.client(keys.platform) as platform:
        check = _check(platform, product_photo(7), brand="acme")
    review = admin.post(f"/v1/checks/{check['check_id']}/review", json={"label": "counterfeit"}).json()
    assert review["added_reference_id"] is None
    assert admin.get("/v1/info").json()["references"] == {"acme": {"authentic": 1, "counterfeit": 0}}


def test_brand_thresholds_change_verdicts_and_are_validated(server, keys, admin):
    admin.post(
        "/v1/references",
        files={"image": ("f.png", product_photo(1), "image/png")},
        data={"brand": "acme", "label": "counterfeit"},
    )
    with server.client(keys.platform) as platform:
        before = _check(platform, resized_jpeg_copy(1))
        assert before["verdict"] == "likely_counterfeit" and before["counterfeit_probability"] < 0.99
        strict = admin.put(
            "/v1/brands/acme/policy", json={"counterfeit_threshold": 0.995, "authentic_threshold": 0.1}
        )
        assert strict.status_code == 200 and strict.json()["effective"]["counterfeit_threshold"] == 0.995
        after = _check(platform, resized_jpeg_copy(1))
    assert (
        after["verdict"] == "inconclusive"
        and after["counterfeit_probability"] == before["counterfeit_probability"]
    )
    for body in ({"counterfeit_threshold": 1.5}, {"counterfeit_threshold": 0.4, "authentic_threshold": 0.6}):
        response = admin.put("/v1/brands/acme/policy", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_policy"
    with server.client(keys.brand_b) as other_brand:
        assert other_brand.get("/v1/brands/acme/policy").status_code == 404
    with server.client(keys.platform) as platform:
        assert platform.get("/v1/brands/acme/policy").status_code == 403


def _reviewed_checks(server, keys, admin) -> None:
    """16 known fakes and 16 genuine photos of acme, each checked by the platform and reviewed by the brand."""
    fakes, genuine = range(500, 516), range(600, 616)
    for seeds, label in ((fakes, "counterfeit"), (genuine, "authentic")):
        for seed in seeds:
            admin.post(
                "/v1/references",
                files={"image": ("r.png", product_photo(seed), "image/png")},
                data={"brand": "acme", "label": label},
            )
    with server.client(keys.platform) as platform, server.client(keys.brand_a) as brand:
        for seeds, label in ((fakes, "counterfeit"), (genuine, "authentic")):
            for seed in seeds:
                check = _check(platform, resized_jpeg_copy(seed), brand="acme")
                assert check["scorer"] == "fused-v4"
                assert (
                    brand.post(f"/v1/checks/{check['check_id']}/review", json={"label": label}).status_code
                    == 201
                )


def test_reviews_train_a_calibration_that_running_services_use(server, keys, admin, settings):
    from tests.service.cli.test_cli import run_cli

    _reviewed_checks(server, keys, admin)
    result = run_cli(settings, "train", "calibrate", "--target-precision", "0.9", "--activate")
    assert result.returncode == 0, result.stderr
    assert "brand acme" in result.stderr  # 32 reviews of both kinds: enough for acme's own thresholds
    version = result.stdout.strip().rsplit("/", 1)[-1].removesuffix(".json")
    deadline = time.monotonic() + 10  # the service caches policies for a couple of seconds
    while (policy := admin.get("/v1/brands/acme/policy").json())["counterfeit_threshold"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert policy["authentic_threshold"] is not None
    with server.client(keys.platform) as platform:
        deadline = time.monotonic() + 10
        while (check := _check(platform, resized_jpeg_copy(503), brand="acme"))[
            "scorer"
        ] != f"calibrated-{version}":
            assert time.monotonic() < deadline, check["scorer"]
            time.sleep(0.1)
    assert check["verdict"] == "likely_counterfeit" and check["counterfeit_probability"] > 0.5


def test_kept_check_images_expire_but_reference_bytes_stay(server, keys, admin, settings):
    from tests.helpers import sql
    from tests.service.cli.test_cli import run_cli

    admin.put("/v1/brands/acme/policy", json={"auto_add_confirmed_counterfeits": True})
    admin.post(
        "/v1/references",
        files={"image": ("g.png", product_photo(4), "image/png")},
        data={"brand": "acme", "label": "authentic"},
    )
    with server.client(keys.platform) as platform:
        kept = _check(platform, product_photo(7), brand="acme")  # only a check uses these bytes
        shared = _check(platform, product_photo(4), brand="acme")  # a reference has the same bytes
    path = lambda digest: settings.blob_dir / digest[:2] / digest[2:4] / digest  # noqa: E731
    digests = dict(sql(settings, "SELECT id, image_sha256 FROM checks"))
    assert path(digests[kept["check_id"]]).exists() and path(digests[shared["check_id"]]).exists()
    assert run_cli(settings, "gc").returncode == 0 and path(digests[kept["check_id"]]).exists()  # not old yet
    sql(settings, "UPDATE checks SET created_at = :old", old=datetime(2020, 1, 1, tzinfo=timezone.utc))
    result = run_cli(settings, "gc", "--older-than-days", "30")
    assert result.returncode == 0 and "Removed 1 check images" in result.stderr
    assert not path(digests[kept["check_id"]]).exists() and path(digests[shared["check_id"]]).exists()
    review = admin.post(f"/v1/checks/{kept['check_id']}/review", json={"label": "counterfeit"}).json()
    assert review["added_reference_id"] is None and "not kept" in review["not_added_because"]


def test_blobs_nothing_refers_to_are_collected_once_an_hour_old(server, admin, settings):
    """A crash between writing a blob and committing its row, or a refused request, leaves bytes no row names:
    `gc` (and the lease holder's GC) removes them once past the grace an in-flight request may need."""
    import os

    from service.core.blobs import BlobStore
    from tests.service.cli.test_cli import run_cli

    blobs = BlobStore(settings.blob_dir)
    referenced = admin.post(
        "/v1/references",
        files={"image": ("g.png", product_photo(4), "image/png")},
        data={"brand": "acme", "label": "authentic"},
    ).json()["sha256"]
    old_orphan, young_orphan = blobs.put(b"left by a crash"), blobs.put(b"a request in flight")
    two_hours_ago = time.time() - 7200
    for digest in (referenced, old_orphan):
        os.utime(blobs.path_for(digest), (two_hours_ago, two_hours_ago))
    result = run_cli(settings, "gc")
    assert result.returncode == 0 and "and 1 blobs nothing refers to" in result.stderr, result.stderr
    assert blobs.exists(referenced) and blobs.exists(young_orphan) and not blobs.exists(old_orphan)


def test_a_calibration_is_used_only_once_activated_and_can_be_rolled_back(server, keys, admin, settings):
    """`train calibrate` fits and saves; checks switch only on `calibrations activate`; rollback goes back."""
    from tests.service.cli.test_cli import run_cli

    _reviewed_checks(server, keys, admin)
    with server.client(keys.platform) as platform, server.client(keys.brand_a) as brand:
        fitted = run_cli(settings, "train", "calibrate", "--target-precision", "0.9")
        assert fitted.returncode == 0 and "not active" in fitted.stderr, fitted.stderr
        version = fitted.stdout.strip().rsplit("/", 1)[-1].removesuffix(".json")
        listed = admin.get("/v1/calibrations").json()
        assert [(c["version"], c["active"]) for c in listed["items"]] == [(version, False)]
        assert (
            listed["scorer"] == "fused-v4"
            and _check(platform, resized_jpeg_copy(530))["scorer"] == "fused-v4"
        )

        assert run_cli(settings, "calibrations", "activate", version).returncode == 0
        assert admin.get("/v1/calibrations").json()["scorer"] == f"calibrated-{version}"
        assert _check(platform, resized_jpeg_copy(531))["scorer"] == f"calibrated-{version}"
        assert admin.post("/v1/calibrations/rollback").json()["scorer"] == "fused-v4"
        assert admin.post(f"/v1/calibrations/{version}/activate").json()["items"][0]["active"] is True
        assert admin.post("/v1/calibrations/nope/activate").status_code == 404
        assert run_cli(settings, "calibrations", "rollback").returncode == 0
        assert json.loads(run_cli(settings, "calibrations", "list").stdout)[0]["active"] is False
        assert brand.get("/v1/calibrations").status_code == 403
