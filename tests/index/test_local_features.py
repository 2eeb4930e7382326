"""Local-feature verification (index/local_features.py): geometric copies of real photos verify, unrelated
photos do not; over HTTP a screenshot or mirrored re-upload that
CLIP cannot place is decided by the stored keypoints, which `counterfeit backfill-keypoints` restores."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageOps

from index.augment import big_crop, crop, emoji_overlay, padding, screenshot, text_overlay
from index.local_features import FORMAT, ReferenceKeypoints, query_keypoints, reference_keypoints, verify
from index.photos import packaged_photos
from tests.helpers import make_settings, running, sql
from tests.service.cli.test_cli import run_cli

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "horse",
    "coins",
)  # clock: 4 keypoints, nothing to verify


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    every = packaged_photos()
    return {name: every[name] for name in PHOTOS}


def _copies(image: Image.Image, seed: int) -> dict[str, Image.Image]:
    rng = np.random.default_rng(seed)
    return {
        "screenshot": screenshot(image, rng),
        "mirror+text": text_overlay(ImageOps.mirror(image), rng),
        "big_crop": big_crop(image, rng),
        "padding": padding(image, rng),
        "emoji": emoji_overlay(image, rng),
    }


def test_copies_of_real_photos_verify_and_unrelated_photos_do_not(photos):
    references = {name: reference_keypoints(image) for name, image in photos.items()}
    for seed, (name, image) in enumerate(photos.items()):
        for transform, copy in _copies(image, seed).items():
            result = verify(query_keypoints(copy), references[name])
            assert result.verified, (name, transform, result)
            assert result.mirrored == transform.startswith("mirror"), (name, transform, result)
        for other in photos:
            if other != name:
                result = verify(query_keypoints(image), references[other])
                assert not result.verified, (name, other, result)


def test_ratio_matches_are_opencvs_brute_force_knn_matches(photos):
    """The matrix-product matcher finds exactly the pairs cv2.BFMatcher(NORM_L2).knnMatch(k=2) + the ratio test do,
    for copies (many matches) and unrelated photos (few)."""
    import cv2

    from index.local_features import RATIO, _ratio_matches, _root_sift

    references = [reference_keypoints(image) for image in photos.values()]
    compared = matched = 0
    for seed, image in enumerate(photos.values()):
        for query in (
            query_keypoints(image),
            query_keypoints(screenshot(image, np.random.default_rng(seed))),
        ):
            for reference in references:
                for side in (reference.plain, reference.mirrored):
                    if len(query) < 2 or len(side) < 2:
                        continue
                    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(
                        _root_sift(query.descriptors), _root_sift(side.descriptors), k=2
                    )
                    expected = [
                        (a.queryIdx, a.trainIdx)
                        for a, b in (p for p in pairs if len(p) == 2)
                        if a.distance < RATIO * b.distance
                    ]
                    query_index, train_index = _ratio_matches(query, side)
                    assert list(zip(query_index.tolist(), train_index.tolist())) == expected
                    compared += 1
                    matched += len(expected)
    assert compared >= 100 and matched >= 1000


def test_keypoints_pack_compactly_and_refuse_another_format(photos):
    keypoints = reference_keypoints(photos["astronaut"])
    packed = keypoints.to_bytes()
    assert len(packed) <= 2 * (8 + 500 * (8 + 128)) + 1 and 50 <= len(keypoints.plain) <= 500
    again = ReferenceKeypoints.from_bytes(packed)
    assert np.array_equal(again.plain.points, keypoints.plain.points)
    assert np.array_equal(again.mirrored.descriptors, keypoints.mirrored.descriptors)
    assert again.plain.size == keypoints.plain.size
    with pytest.raises(ValueError, match="format"):
        ReferenceKeypoints.from_bytes(bytes([FORMAT + 1]) + packed[1:])


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


@pytest.mark.parametrize("device_decode", ["off", "on"])
def test_copies_clip_cannot_place_are_decided_by_stored_keypoints_and_backfill_restores_them(
    tmp_path, keys_for, photos, device_decode
):
    """The match similarity is set out of CLIP's reach, so only PDQ and keypoints can decide. A screenshot of
    a registered fake and a mirrored, captioned genuine photo (PDQ misses both) are decided by verification;
    an unrelated photo stays inconclusive. Without stored keypoints the screenshot is undecided; the backfill
    command computes them from the blobs and the next check is decided again. Also where the model decodes
    uploads on its device (what CUDA gets): a small CPU decode then makes the keypoints."""
    settings = make_settings(
        tmp_path / "data", min_match_similarity=0.999, query_regions="whole", device_decode=device_decode
    )
    keys = keys_for(settings)
    names = list(photos)
    ids = {}
    with running(settings) as server:
        with server.client(keys.admin) as admin:
            for position, name in enumerate(names[:4]):
                label = "counterfeit" if position % 2 == 0 else "authentic"
                response = admin.post(
                    "/v1/references",
                    data={"brand": "acme", "label": label},
                    files={"image": (f"{name}.jpg", _jpeg(photos[name]), "image/jpeg")},
                )
                assert response.status_code == 201, response.text
                ids[name] = response.json()["id"]
        assert sql(settings, "SELECT count(*) FROM reference_keypoints")[0][0] == 4

        with server.client(keys.platform) as platform:

            def check(image: Image.Image) -> dict:
                response = platform.post("/v1/check", files={"image": ("q.jpg", _jpeg(image), "image/jpeg")})
                assert response.status_code == 200, response.text
                return response.json()

            rng = np.random.default_rng(11)
            fake = check(screenshot(photos[names[0]], rng))
            top = fake["evidence"][0]
            assert fake["verdict"] == "likely_counterfeit" and fake["regime"] == "copy", fake
            assert top["reference_id"] == ids[names[0]] and top["signals"] == ["local"], top
            assert top["inliers"] >= 10 and 0 < top["inlier_coverage"] <= 1, top
            genuine = check(text_overlay(ImageOps.mirror(photos[names[1]]), rng))
            assert genuine["verdict"] == "likely_authentic", genuine
            assert genuine["evidence"][0]["reference_id"] == ids[names[1]], genuine
            detections = _keypoint_detections(server, keys.admin)
            unrelated = check(photos[names[5]])
            assert unrelated["verdict"] == "no_match" and unrelated["regime"] is None, unrelated
            assert all("local" not in e["signals"] for e in unrelated["evidence"])
            assert _keypoint_detections(server, keys.admin) == detections + 1
            # A re-upload matches by PDQ, which needs no second proof: on the CPU path its hash is known before
            # the model runs, so its keypoints are not even detected (on the device path they are, unused).
            reupload = check(photos[names[2]])
            assert (
                reupload["verdict"] == "likely_counterfeit" and "pdq" in reupload["evidence"][0]["signals"]
            ), reupload
            assert reupload["evidence"][0]["inliers"] is None
            assert _keypoint_detections(server, keys.admin) == detections + 1 + (device_decode == "on")

            sql(settings, "DELETE FROM reference_keypoints")  # as for references registered before keypoints
            before = check(screenshot(photos[names[0]], np.random.default_rng(11)))
            assert before["verdict"] == "no_match", before
            assert all(e["inliers"] is None for e in before["evidence"])
            backfilled = run_cli(settings, "backfill-keypoints")
            assert backfilled.returncode == 0, backfilled.stderr
            assert "4 references had no keypoints: 4 added, 0 unreadable" in backfilled.stderr
            after = check(screenshot(photos[names[0]], np.random.default_rng(11)))
            assert after["verdict"] == "likely_counterfeit" and after["evidence"][0]["signals"] == [
                "local"
            ], after


def _keypoint_detections(server, admin_key: str) -> int:
    with server.client(admin_key) as admin:
        text = admin.get("/metrics").text
    found = re.search(r'^counterfeit_stage_seconds_count\{stage="keypoints"\} ([0-9.e+]+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def test_a_copy_outside_clips_candidates_is_verified_when_its_hash_is_near(photos):
    """A sticker can push a copy out of CLIP's top candidates while its PDQ hash stays far closer than an
    unrelated photo's (yet beyond a PDQ match): such references are verified too, and only a verified one
    becomes evidence. Real photos, PDQ and keypoints; the CLIP vectors are made to point elsewhere."""
    from types import SimpleNamespace

    from index.images import pdq_source
    from index.local_features import PDQ_CANDIDATE_DISTANCE
    from index.pdq import DEFAULT_MAX_DISTANCE, PdqIndex, compute_pdq
    from index.vector_index import VectorIndex
    from scoring.evidence import gather_evidence
    from scoring.signals import EvidenceQuery, EvidenceSources

    names = list(photos)
    source = photos[names[0]]
    copy = crop(
        emoji_overlay(source, np.random.default_rng(1)), np.random.default_rng(0), 0.06, 0.06
    )  # 58 bits
    hashes = PdqIndex()
    hashes.add(list(range(len(names))), [compute_pdq(pdq_source(photos[name])) for name in names])
    query_hash = compute_pdq(pdq_source(copy))
    distance = query_hash.distance(compute_pdq(pdq_source(source)))
    assert DEFAULT_MAX_DISTANCE < distance <= PDQ_CANDIDATE_DISTANCE, distance  # near, but no PDQ match
    basis = np.eye(len(names), 8, dtype=np.float32)
    basis[0] = -basis[1]  # the copy's source is the least similar of all to CLIP: not even a CLIP neighbour
    vectors = VectorIndex.build(np.arange(len(names), dtype=np.int64), basis, ["acme"] * len(names))
    facts = {i: SimpleNamespace(brand="acme", label="counterfeit", product=None) for i in range(len(names))}
    stored = {i: reference_keypoints(photos[name]) for i, name in enumerate(names)}

    def evidence(points):
        sources = EvidenceSources(
            vectors,
            hashes,
            lambda ids: {i: facts[i] for i in ids},
            DEFAULT_MAX_DISTANCE,
            reference_keypoints=lambda ids: {i: stored[i] for i in ids},
        )
        return gather_evidence(sources, EvidenceQuery(basis[1], query_hash, 1, keypoints=points))

    without = evidence(None)
    assert [n.reference_id for n in without] == [1]  # CLIP's one candidate is another photo
    found = evidence(query_keypoints(copy))
    verified = [n for n in found if n.local_match]
    # Found by its hash: CLIP has it last (similarity -1) or not at all.
    assert [n.reference_id for n in verified] == [0] and (verified[0].clip_similarity or -1.0) == -1.0, found
    assert all(n.reference_id in (0, 1) for n in found)  # unverified hash neighbours are not evidence
