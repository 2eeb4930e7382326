"""Decoding untrusted uploads: limits and normalisation to RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from index.images import ImageRejected, decode_image
from index.synthetic import synthetic_image
from tests.helpers import png_bytes

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 1_000_000}


def test_animated_image_uses_first_frame():
    first, second = synthetic_image(1), synthetic_image(2)
    buffer = io.BytesIO()
    first.save(buffer, "PNG", save_all=True, append_images=[second])  # APNG: lossless frames
    decoded = decode_image(buffer.getvalue(), **LIMITS)
    assert np.array_equal(np.asarray(decoded), np.asarray(first))


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "white")
    image.paste((255, 0, 0), (0, 0, 10, 20))  # red band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: the red band ends up on top
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=95)
    decoded = decode_image(buffer.getvalue(), **LIMITS)
    assert decoded.size == (20, 40)
    top, bottom = np.asarray(decoded)[2, 10], np.asarray(decoded)[-3, 10]
    assert top[0] > 200 and top[1] < 60 and bottom.min() > 200


def test_sixteen_bit_is_scaled_not_clipped():
    array = np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16)
    decoded = np.asarray(decode_image(png_bytes(Image.fromarray(array)), **LIMITS))
    assert decoded.shape == (16, 16, 3)
    assert decoded[0, 0, 0] == 0 and decoded[-1, -1, 0] == 255 and 100 < decoded[8, 0, 0] < 160


def test_transparency_becomes_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert np.asarray(decode_image(png_bytes(image), **LIMITS)).min() == 255


@pytest.mark.parametrize(
    "data,code",
    [
        (b"", "empty_image"),
        (b"not an image at all", "not_an_image"),
        (png_bytes(Image.new("L", (1001, 1000))), "too_many_pixels"),
    ],
)
def test_rejections(data, code):
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, **LIMITS)
    assert caught.value.code == code
