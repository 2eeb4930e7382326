"""Query regions (index/regions.py): a screenshot-style and a flipped re-upload of a registered fake
are found by the region that holds the photo, over HTTP with the offline backbone."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from index.prepare import PrepareSpec, prepare
from index.preprocess import PreprocessConfig
from index.regions import QUERY_REGIONS, REGION_PENALTY, WHOLE, Region, best_per_reference, query_regions
from tests.helpers import make_settings, running
from tests.test_lookalike import OFFLINE_MODEL, _jpeg
from training.augment import screenshot, text_overlay
from training.lookalike_set import fake_design, genuine_design, photograph, render_product


def test_a_reference_counts_with_its_best_region_and_other_regions_pay_the_penalty():
    regions = (WHOLE, Region("mirror", mirror=True))
    similarities = np.array([[0.80, 0.60], [0.84, 0.90]], dtype=np.float32)
    ids = np.array([[1, 2], [1, 2]])
    best = best_per_reference(similarities, ids, regions)
    assert best[1] == (pytest.approx(0.80), "whole")  # 0.84 - penalty < 0.80
    assert best[2] == (pytest.approx(0.90 - REGION_PENALTY), "mirror")
    with pytest.raises(ValueError, match="unknown query region preset"):
        query_regions("everything")


def test_workers_cut_each_region_from_the_decoded_image():
    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (200, 1))  # dark on the left, bright on the right
    image = Image.fromarray(np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)], axis=-1))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    config = PreprocessConfig(resize_to=64, crop=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear")
    out = prepare(buffer.getvalue(), PrepareSpec(draft_size=None, pixels=config, regions=QUERY_REGIONS["default"]))
    whole, mirror, centre = out.model_inputs
    assert whole.shape == mirror.shape == centre.shape == (64, 64, 3)
    # The whole image's centre crop and its mirror are left-right reversed; the 80 % centre is another crop.
    assert np.abs(whole.astype(int) - mirror[:, ::-1].astype(int)).max() <= 2
    assert not np.array_equal(whole, centre)
    assert prepare(buffer.getvalue(), PrepareSpec(draft_size=None, pixels=config)).region_inputs is None


def _shot(image: Image.Image, seed: int) -> Image.Image:
    return screenshot(image, np.random.default_rng(seed))


def _flipped_with_text(image: Image.Image, seed: int) -> Image.Image:
    return text_overlay(ImageOps.mirror(image), np.random.default_rng(seed))


def test_screenshot_and_flipped_reuploads_of_a_registered_fake_are_counterfeit(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", model=OFFLINE_MODEL, min_match_similarity=None)
    keys = keys_for(settings)
    rng = np.random.default_rng(3)
    fakes = []
    with running(settings) as server, server.client(keys.admin) as admin:
        for seed in range(4):  # each brand design photographed, genuine and a counterfeiter's version
            genuine = genuine_design(seed)
            for label, design in (("authentic", genuine), ("counterfeit", fake_design(genuine, seed, 0))):
                photo = photograph(render_product(design), rng, size=512)
                response = admin.post("/v1/references", data={"brand": "acme", "label": label},
                                      files={"image": ("p.jpg", _jpeg(photo), "image/jpeg")})
                assert response.status_code == 201, response.text
                if label == "counterfeit":
                    fakes.append((response.json()["id"], photo))
        with server.client(keys.platform) as platform:
            def check(image: Image.Image) -> dict:
                response = platform.post("/v1/check", files={"image": ("q.jpg", _jpeg(image), "image/jpeg")})
                assert response.status_code == 200, response.text
                return response.json()

            for (reference_id, photo), seed in zip(fakes[2:], (7, 5)):  # the photo inside an app's chrome
                result = check(_shot(photo, seed))
                top = result["evidence"][0]
                assert result["verdict"] == "likely_counterfeit", result
                assert top["reference_id"] == reference_id and "clip" in top["signals"]
                assert top["region"] == "centre-80", top  # found by the region that holds the photo
            for (reference_id, photo), seed in zip(fakes[1:], (3, 5, 7)):  # mirrored, with a sales banner on it
                result = check(_flipped_with_text(photo, seed))
                top = result["evidence"][0]
                assert result["verdict"] == "likely_counterfeit", result
                assert top["reference_id"] == reference_id and top["region"] == "mirror", top
