"""Turn uploaded bytes into an RGB image, mapping rejections to HTTP errors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PIL import Image

from index.images import DecodeBudget, DecodeBusy, ImageRejected, decode_image
from service.errors import ApiError, overloaded


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    draft_size: tuple[int, int] | None = None  # decode JPEGs only as large as the model needs
    budget: DecodeBudget | None = None  # process-wide decode memory shared by concurrent requests


def decode_upload(data: bytes, limits: ImageLimits) -> Image.Image:
    try:
        return decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, draft_size=limits.draft_size,
                            budget=limits.budget)
    except ImageRejected as exc:
        status = 413 if exc.too_large else (400 if exc.code == "empty_image" else 422)
        raise ApiError(status, exc.code, exc.message) from None
    except DecodeBusy as exc:
        raise overloaded(f"decoding too many large images: {exc}", retry_after=2) from None


def decode_reference_image(load: Callable[[], bytes], limits: ImageLimits) -> Image.Image | str:
    """A stored reference's image (accepted once, so no size limits now), or why it cannot be had."""
    try:
        return decode_image(load(), max_bytes=1 << 40, max_pixels=1 << 40, draft_size=limits.draft_size)
    except FileNotFoundError:
        return "missing_blob: the image file is not in the blob store"
    except ImageRejected as exc:
        return f"{exc.code}: {exc.message}"
