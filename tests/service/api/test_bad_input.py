"""Bad uploads get a clear 4xx and change nothing; odd but valid images are accepted."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from index.synthetic import synthetic_image
from service.db.models import Check
from service.db.session import make_engine, make_session_factory
from tests.helpers import jpeg_bytes, png_bytes, product_photo

MB = 1024 * 1024


def _bomb_png() -> bytes:
    """A tiny file that decodes to 56 megapixels (over the 50 MP default)."""
    return png_bytes(Image.new("L", (8000, 7000)))


def _state(server, admin) -> tuple:
    blobs = sorted(p.name for p in server.settings.blob_dir.rglob("*") if p.is_file())
    engine = make_engine(server.settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        checks = session.scalar(select(func.count()).select_from(Check))
    engine.dispose()
    info = admin.get("/v1/info").json()
    return info["references"], info["index"], blobs, checks


REGISTRATION_CASES = [
    (
        "not an image",
        {"image": ("x.jpg", b"hello, this is not an image", "image/jpeg")},
        {"label": "authentic"},
        422,
        "not_an_image",
    ),
    (
        "truncated jpeg",
        {"image": ("t.jpg", jpeg_bytes(synthetic_image(5))[:3000], "image/jpeg")},
        {"label": "authentic"},
        422,
        "corrupt_image",
    ),
    ("empty file", {"image": ("e.png", b"", "image/png")}, {"label": "authentic"}, 400, "empty_image"),
    ("no image field", None, {"label": "authentic"}, 422, "invalid_request"),
    (
        "unknown label",
        {"image": ("a.png", product_photo(5), "image/png")},
        {"label": "fake-ish"},
        422,
        "invalid_label",
    ),
    (
        "bad brand",
        {"image": ("a.png", product_photo(5), "image/png")},
        {"label": "authentic", "brand": "Acme Corp!"},
        422,
        "invalid_brand",
    ),
    (
        "metadata not object",
        {"image": ("a.png", product_photo(5), "image/png")},
        {"label": "authentic", "metadata": "[1, 2]"},
        422,
        "invalid_metadata",
    ),
    (
        "metadata not json",
        {"image": ("a.png", product_photo(5), "image/png")},
        {"label": "authentic", "metadata": "{oops"},
        422,
        "invalid_metadata",
    ),
    (
        "over byte limit (checked after read)",
        {"image": ("big.jpg", b"\xff" * (20 * MB + 10), "image/jpeg")},
        {"label": "authentic"},
        413,
        "image_too_large",
    ),
    (
        "over byte limit (rejected from Content-Length)",
        {"image": ("big.jpg", b"\xff" * (22 * MB), "image/jpeg")},
        {"label": "authentic"},
        413,
        "body_too_large",
    ),
    (
        "decompression bomb",
        {"image": ("bomb.png", _bomb_png(), "image/png")},
        {"label": "authentic"},
        413,
        "too_many_pixels",
    ),
]


@pytest.mark.parametrize("case", REGISTRATION_CASES, ids=[c[0] for c in REGISTRATION_CASES])
def test_bad_registration_is_rejected_and_writes_nothing(server, admin, case):
    _, files, data, status, code = case
    admin.post(
        "/v1/references",
        files={"image": ("ok.png", product_photo(1), "image/png")},
        data={"brand": "acme", "label": "counterfeit"},
    )
    before = _state(server, admin)
    response = admin.post("/v1/references", files=files, data={"brand": "acme", **data})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert _state(server, admin) == before


def test_empty_body_is_rejected(server, admin):
    before = _state(server, admin)
    for path, code in (
        ("/v1/references", "invalid_request"),
        ("/v1/check", "image_or_url"),
    ):  # a check may give image_url
        response = admin.post(path, content=b"")
        assert response.status_code == 422 and response.json()["error"]["code"] == code
    assert _state(server, admin) == before


CHECK_CASES = [
    ("not an image", {"image": ("x.jpg", b"GIF89a but not really", "image/gif")}, {}, 422, "not_an_image"),
    ("k too large", {"image": ("a.png", product_photo(5), "image/png")}, {"k": "1000"}, 422, "invalid_k"),
    ("k zero", {"image": ("a.png", product_photo(5), "image/png")}, {"k": "0"}, 422, "invalid_k"),
    (
        "bad brand hint",
        {"image": ("a.png", product_photo(5), "image/png")},
        {"brand": "NOT VALID"},
        422,
        "invalid_brand",
    ),
    ("decompression bomb", {"image": ("bomb.png", _bomb_png(), "image/png")}, {}, 413, "too_many_pixels"),
]


@pytest.mark.parametrize("case", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_bad_check_is_rejected_and_not_recorded(server, keys, admin, case):
    _, files, data, status, code = case
    before = _state(server, admin)
    with server.client(keys.platform) as platform:
        response = platform.post("/v1/check", files=files, data=data)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert _state(server, admin) == before


def _animated_gif() -> bytes:
    frames = [synthetic_image(1).convert("P"), synthetic_image(2).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _exif_rotated_jpeg() -> bytes:
    image = synthetic_image(3, size=(300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def _sixteen_bit_png() -> bytes:
    array = (np.linspace(0, 65535, 128 * 96).reshape(96, 128)).astype(np.uint16)
    return png_bytes(Image.fromarray(array))


def _rgba_png() -> bytes:
    image = synthetic_image(4).convert("RGBA")
    image.putalpha(128)
    return png_bytes(image)


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    synthetic_image(6).convert("CMYK").save(buffer, "JPEG")
    return buffer.getvalue()


ODD_IMAGES = [
    ("animated gif", _animated_gif, (256, 256)),
    ("exif rotated jpeg", _exif_rotated_jpeg, (200, 300)),
    ("16-bit png", _sixteen_bit_png, (128, 96)),
    ("rgba png", _rgba_png, (256, 256)),
    ("palette png", lambda: png_bytes(synthetic_image(7).convert("P")), (256, 256)),
    ("cmyk jpeg", _cmyk_jpeg, (256, 256)),
]


@pytest.mark.parametrize("case", ODD_IMAGES, ids=[c[0] for c in ODD_IMAGES])
def test_unusual_but_valid_images_are_accepted(server, keys, admin, case):
    _, make, size = case
    data = make()
    response = admin.post(
        "/v1/references",
        files={"image": ("odd", data, "application/octet-stream")},
        data={"brand": "acme", "label": "authentic"},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == size
    with server.client(keys.platform) as platform:
        result = platform.post("/v1/check", files={"image": ("odd", data, "application/octet-stream")}).json()
    assert result["evidence"][0]["reference_id"] == response.json()["id"]
    assert result["evidence"][0]["similarity"] > 0.99
