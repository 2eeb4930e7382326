"""Real photos that ship with installed packages (scikit-image's sample data), usable offline."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

# Distinct images in skimage.data that need no download (``cat`` is ``chelsea``, so it is left out).
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
    "checkerboard",
)


def packaged_photos() -> dict[str, Image.Image]:
    """Name -> RGB image for each photo in :data:`SKIMAGE_PHOTOS`."""
    from skimage import data

    photos = {}
    for name in SKIMAGE_PHOTOS:
        array = getattr(data, name)()
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        image = Image.fromarray(array)
        photos[name] = (
            image.convert("RGBA").convert("RGB") if image.mode in ("RGBA", "LA") else image.convert("RGB")
        )
    return photos


def reupload_copy(image: Image.Image, seed: int = 0) -> Image.Image:
    """A typical re-upload: off-centre crop of ~85 %, resize, brightness change, JPEG re-compression."""
    rng = np.random.default_rng(seed)
    width, height = image.size
    crop_w, crop_h = int(width * 0.85), int(height * 0.85)
    left, top = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
    copy = image.crop((left, top, left + crop_w, top + crop_h)).resize(
        (int(crop_w * 0.7), int(crop_h * 0.7)), Image.BILINEAR
    )
    copy = ImageEnhance.Brightness(copy).enhance(float(rng.uniform(0.85, 1.15)))
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=int(rng.integers(55, 80)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
