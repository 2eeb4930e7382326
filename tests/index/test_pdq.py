"""PDQ: near-duplicates of a known fake are matched, unrelated images are not, flat images are ignored."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from index.pdq import MIN_QUALITY, PdqIndex, compute_pdq
from index.photos import packaged_photos
from tests.helpers import jpeg_bytes, png_bytes


def recompressed_slight_crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    cropped = image.crop((width // 100, height // 100, width - width // 100, height - height // 100))
    data = jpeg_bytes(cropped.resize((int(cropped.width * 0.7), int(cropped.height * 0.7))), quality=60)
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_pdq_matches_copies_not_unrelated_images_and_ignores_flat_ones():
    photos = packaged_photos()
    names = ["astronaut", "coffee", "chelsea", "rocket", "horse", "camera"]
    index = PdqIndex()
    index.add(list(range(len(names))), [compute_pdq(photos[n]) for n in names])
    for i, name in enumerate(names):
        matches = index.search(compute_pdq(recompressed_slight_crop(photos[name])))
        assert matches and matches[0][0] == i and matches[0][1] <= 31, (name, matches)
    for unrelated in ("immunohistochemistry", "hubble_deep_field", "page"):
        assert index.search(compute_pdq(photos[unrelated])) == [], unrelated
    flat = compute_pdq(Image.new("RGB", (300, 300), (120, 120, 120)))
    assert flat.quality < MIN_QUALITY
    index.add([99], [flat])
    assert len(index) == len(names)  # the flat hash was not indexed
    assert index.search(flat) == []  # and a flat query matches nothing


def test_check_reports_pdq_evidence(server, keys, admin):
    photo = packaged_photos()["coffee"]
    fake = admin.post(
        "/v1/references",
        files={"image": ("fake.png", png_bytes(photo), "image/png")},
        data={"brand": "acme", "label": "counterfeit"},
    ).json()
    assert fake["pdq"]["quality"] >= MIN_QUALITY and len(fake["pdq"]["hash"]) == 64
    copy = jpeg_bytes(recompressed_slight_crop(photo), quality=60)
    with server.client(keys.platform) as platform:
        result = platform.post("/v1/check", files={"image": ("q.jpg", copy, "image/jpeg")}).json()
    top = result["evidence"][0]
    assert top["reference_id"] == fake["id"] and top["pdq_distance"] <= 31 and "pdq" in top["signals"]
    assert result["verdict"] == "likely_counterfeit" and result["pdq"]["quality"] >= MIN_QUALITY
    assert np.isclose(top["similarity"], top["clip_similarity"])
