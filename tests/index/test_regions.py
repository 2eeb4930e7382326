"""Query regions (index/regions.py): a screenshot-style and a flipped re-upload of a registered fake
are found by the region that holds the photo, over HTTP with the offline backbone."""

from __future__ import annotations

import io
from math import ceil

import numpy as np
import pytest
from PIL import Image, ImageOps

from index.augment import screenshot, text_overlay
from index.prepare import PrepareSpec, prepare
from index.preprocess import PreprocessConfig
from index.regions import (
    QUERY_REGIONS,
    REFERENCE_REGIONS,
    REGION_PENALTY,
    WHOLE,
    Region,
    best_per_reference,
    draft_for_regions,
    query_regions,
)
from tests.helpers import make_settings, running, sql
from tests.service.checks.test_lookalike import OFFLINE_MODEL, _jpeg
from training.lookalike_set import fake_design, genuine_design, photograph, render_product


def test_a_reference_counts_with_its_best_region_and_other_regions_pay_the_penalty():
    regions = (WHOLE, Region("mirror", mirror=True))
    similarities = np.array([[0.80, 0.60], [0.84, 0.90]], dtype=np.float32)
    ids = np.array([[1, 2], [1, 2]])
    best = best_per_reference(similarities, ids, regions)
    assert best[1] == (pytest.approx(0.80), "whole", 0)  # 0.84 - penalty < 0.80
    assert best[2] == (pytest.approx(0.90 - REGION_PENALTY), "mirror", 0)
    with pytest.raises(ValueError, match="unknown query region preset"):
        query_regions("everything")


def test_workers_cut_each_region_from_the_decoded_image():
    ramp = np.tile(
        np.linspace(0, 255, 400, dtype=np.uint8), (200, 1)
    )  # dark on the left, bright on the right
    image = Image.fromarray(np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)], axis=-1))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    config = PreprocessConfig(
        resize_to=64, crop=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear"
    )
    out = prepare(
        buffer.getvalue(), PrepareSpec(draft_size=None, pixels=config, regions=QUERY_REGIONS["wide"])
    )
    whole, centre, mirror, *others = out.model_inputs
    assert whole.shape == mirror.shape == centre.shape == (64, 64, 3) and len(others) == 2
    # The whole image's centre crop and its mirror are left-right reversed; the 80 % centre is another crop.
    assert np.abs(whole.astype(int) - mirror[:, ::-1].astype(int)).max() <= 2
    assert not np.array_equal(whole, centre)
    assert prepare(buffer.getvalue(), PrepareSpec(draft_size=None, pixels=config)).region_inputs is None


def test_a_reindex_decodes_only_as_large_as_its_regions_need():
    """No PDQ is hashed in a reindex, so references are decoded near the model's size (not the >= 512 px of
    uploads): the whole image alone at the model's draft, 70 % regions at 1/0.7 of it so that no region is
    upsampled. Every region's vector stays that of the same region cut from a full-size decode."""
    from index.models import load_embedder
    from index.photos import packaged_photos
    from service.jobs.reindex_pipeline import reindex_spec

    embedder = load_embedder(OFFLINE_MODEL)
    side = embedder.draft_size[0]
    regions = REFERENCE_REGIONS["default"]
    assert reindex_spec(embedder).draft_size == embedder.draft_size
    assert reindex_spec(embedder, regions).draft_size == (ceil(side / 0.7), ceil(side / 0.7))
    assert draft_for_regions(None, regions) is None  # models without a fast path: the decoder's default

    photo = packaged_photos()["coffee"].convert("RGB").resize((3000, 2000))
    data = _jpeg(photo)
    prepared = prepare(data, reindex_spec(embedder, regions))
    ours, failures = embedder.embed_inputs(prepared.model_inputs)
    full = Image.open(io.BytesIO(data)).convert("RGB")  # every pixel, no DCT scaling
    reference = embedder.embed([region.crop(full) for region in regions])
    assert not failures
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.99, dict(zip([r.name for r in regions], cosines.round(4)))


def _shot(image: Image.Image, seed: int) -> Image.Image:
    return screenshot(image, np.random.default_rng(seed))


def _flipped_with_text(image: Image.Image, seed: int) -> Image.Image:
    return text_overlay(ImageOps.mirror(image), np.random.default_rng(seed))


@pytest.mark.parametrize("preset, device_decode", [("default", "off"), ("wide", "off"), ("wide", "on")])
def test_screenshot_and_flipped_reuploads_of_a_registered_fake_are_counterfeit(
    tmp_path, keys_for, preset, device_decode
):
    """With the default regions a screenshot is found by the 80 % centre and a flipped re-upload by dihedral
    PDQ and the whole image; ``wide`` also finds a flipped photo under a sales banner by its mirror image —
    also when the model decodes uploads on its device (what CUDA gets) and cuts the regions there."""
    settings = make_settings(
        tmp_path / "data",
        model=OFFLINE_MODEL,
        min_match_similarity=None,
        query_regions=preset,
        device_decode=device_decode,
    )
    keys = keys_for(settings)
    rng = np.random.default_rng(3)
    fakes = []
    with running(settings) as server, server.client(keys.admin) as admin:
        for seed in range(4):  # each brand design photographed, genuine and a counterfeiter's version
            genuine = genuine_design(seed)
            for label, design in (("authentic", genuine), ("counterfeit", fake_design(genuine, seed, 0))):
                photo = photograph(render_product(design), rng, size=512)
                response = admin.post(
                    "/v1/references",
                    data={"brand": "acme", "label": label},
                    files={"image": ("p.jpg", _jpeg(photo), "image/jpeg")},
                )
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
                assert top["region"] in ("centre-80", "screen"), top  # found by a region that holds the photo
            for reference_id, photo in fakes:  # mirrored
                result = check(ImageOps.mirror(photo))
                assert result["verdict"] == "likely_counterfeit", result
                assert result["evidence"][0]["reference_id"] == reference_id
            if preset == "wide":
                for (reference_id, photo), seed in zip(
                    fakes[1:], (3, 5, 7)
                ):  # mirrored, with a sales banner on it
                    result = check(_flipped_with_text(photo, seed))
                    top = result["evidence"][0]
                    assert result["verdict"] == "likely_counterfeit", result
                    assert top["reference_id"] == reference_id and top["region"] == "mirror", top


def test_an_index_counts_a_reference_with_its_best_vector_and_keeps_its_regions_through_a_snapshot(tmp_path):
    from index.vector_index import VectorIndex

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    region = rng.standard_normal((2, 16)).astype(np.float32)
    region /= np.linalg.norm(region, axis=1, keepdims=True)
    index = VectorIndex.build(
        np.array([10, 11, 12]), vectors[:3], ["acme", "acme", "globex"], regions=[region, None, None]
    )
    assert len(index) == 3 and index.vector_count == 5 and index.region_vectors() == 2
    similarities, ids, matched = index.search_regions(region[1:2], 3)
    assert ids[0, 0] == 10 and matched[0, 0] == 2  # found by its second region ...
    assert similarities[0, 0] == pytest.approx(1 - REGION_PENALTY, abs=1e-5)  # ... counted below its raw 1.0
    assert len(set(ids[0].tolist())) == 3  # distinct references, not one per vector
    assert index.search(region[1:2], 2, brand="globex")[1][0, 0] == 12  # the brand filter covers regions too
    index.save(tmp_path / "ix.npz", {})
    loaded, _ = VectorIndex.load(tmp_path / "ix.npz")
    assert np.array_equal(loaded.search_regions(region[1:2], 3)[1], ids) and loaded.region_vectors() == 2
    loaded.remove([10])
    assert len(loaded) == 2 and loaded.vector_count == 2 and 10 not in loaded.search(region, 3)[1]
    # The widest reference is gone: searches read one vector per reference again, and see a new wide one.
    assert loaded.search(vectors[1:3], 1)[1][:, 0].tolist() == [11, 12]
    loaded.add([13], vectors[3:4], ["acme"], regions=[region[:1]])
    similarities, ids, matched = loaded.search_regions(region[:1], 2)
    assert ids[0, 0] == 13 and matched[0, 0] == 1 and len(set(ids[0].tolist())) == 2


def test_reference_regions_survive_a_restart_and_a_reindex(tmp_path, keys_for):
    """A crop of a registered photo (its top-left 70 %) matches that region of the reference; so it does after
    a restart (snapshot + replay) and after a reindex into a new generation (regions read back from the DB)."""
    from tests.helpers import png_bytes
    from tests.service.jobs.test_reindex import _wait_job

    settings = make_settings(tmp_path / "data")
    keys = keys_for(settings)
    source = synthetic_image_of(5)
    crop = png_bytes(REFERENCE_REGIONS["default"][2].crop(source))  # "top-left"

    def check_crop(server) -> dict:
        with server.client(keys.platform) as platform:
            response = platform.post("/v1/check", files={"image": ("q.png", crop, "image/png")})
            assert response.status_code == 200, response.text
            return response.json()["evidence"][0]

    with running(settings) as server, server.client(keys.admin) as admin:
        reference_id = admin.post(
            "/v1/references",
            files={"image": ("r.png", png_bytes(source), "image/png")},
            data={"brand": "acme", "label": "counterfeit"},
        ).json()["id"]
        for seed in range(6, 9):  # other references
            admin.post(
                "/v1/references",
                files={"image": ("o.png", png_bytes(synthetic_image_of(seed)), "image/png")},
                data={"brand": "acme", "label": "authentic"},
            ).raise_for_status()
        first = check_crop(server)
    assert first["reference_id"] == reference_id and first["reference_region"] == "top-left", first
    assert first["clip_similarity"] > 0.9
    with running(settings) as server, server.client(keys.admin) as admin:  # restart
        assert check_crop(server) == first
        info = admin.get("/v1/info").json()
        assert info["regions"] == {
            "query": ["whole", "centre-80"],
            "reference": [r.name for r in REFERENCE_REGIONS["default"]],
        }
        assert info["index"]["size"] == 4 and info["index"]["vectors"] == 24
        job = admin.post("/v1/reindex", json={}).json()["job_id"]
        done = _wait_job(admin, job, lambda j: j["state"] in ("succeeded", "failed"))
        assert done["state"] == "succeeded" and done["result"]["size"] == 4, done
        assert done["result"]["vectors"] == 4 * 6  # each reference's whole image and five regions
        assert check_crop(server) == first
    ((preset, whole, regions),) = sql(
        settings,
        "SELECT region_preset, length(vector), length(regions) FROM embeddings WHERE reference_id = :r",
        r=reference_id,
    )
    assert preset == "default" and regions == 5 * whole  # five regions beside the whole image, stored


def synthetic_image_of(seed: int) -> Image.Image:
    from index.synthetic import synthetic_image

    return synthetic_image(seed, size=(320, 320))
