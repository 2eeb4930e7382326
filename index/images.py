"""Decode untrusted image bytes into RGB PIL images, enforcing byte and pixel limits.

Every normalisation a real upload needs happens here, once: the first frame of animated
images, EXIF orientation, CMYK / 16-bit / palette / alpha converted to 8-bit RGB.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# We enforce our own pixel limit before decoding; Pillow's global bomb check would otherwise
# fire first with a less useful message (and its limit is process-wide state).
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(ValueError):
    """An upload that is not an acceptable image. ``code`` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str, too_large: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.too_large = too_large


def check_byte_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise ImageRejected("empty_image", "The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ImageRejected(
            "image_too_large", f"The image is {len(data)} bytes; the limit is {max_bytes} bytes.", too_large=True
        )


def decode_image(data: bytes, max_bytes: int, max_pixels: int, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Return an RGB image decoded from ``data`` or raise :class:`ImageRejected`.

    ``draft_size`` lets JPEG decoding skip detail the model will not see (DCT scaling); the
    uploaded image's displayed size stays available as ``image.info["source_size"]``.
    """
    check_byte_size(data, max_bytes)
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "The upload is not a recognised image format.") from None
    except Exception as exc:  # Pillow raises many types on malformed headers
        raise ImageRejected("not_an_image", f"The image header could not be read: {exc}") from None

    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("invalid_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
            too_large=True,
        )
    try:
        image.seek(0)  # animated images: first frame
        if draft_size is not None and image.format == "JPEG":
            image.draft("RGB", draft_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        orientation = image.getexif().get(0x0112, 1)
        image = to_rgb(ImageOps.exif_transpose(image))
        # Draft decoding may have shrunk the pixels; record the size the uploader's image really has.
        image.info["source_size"] = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        return image
    except ImageRejected:
        raise
    except Exception as exc:  # truncated data, corrupt streams
        raise ImageRejected("corrupt_image", f"The image data could not be decoded: {exc}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent areas become white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode in ("RGB", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
