"""Decode untrusted image bytes into RGB PIL images, enforcing byte and pixel limits.

Every normalisation a real upload needs happens here, once: the first frame of animated
images, EXIF orientation, CMYK / 16-bit / palette / alpha converted to 8-bit RGB.
"""

from __future__ import annotations

import io
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Iterator

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


class DecodeBusy(RuntimeError):
    """The decode memory budget stayed exhausted for longer than a caller is willing to wait."""


class DecodeBudget:
    """A process-wide cap on the memory that concurrent decodes may hold at once.

    A small file can decode to hundreds of megabytes (a 1-bit PNG of 50 MP is 6 KB on disk), so
    byte limits alone do not bound memory. Each decode reserves its estimate first; one that does
    not fit waits up to ``wait_seconds`` for others to finish and then gives up (:class:`DecodeBusy`).
    """

    def __init__(self, max_bytes: int, wait_seconds: float = 2.0):
        self.max_bytes = max_bytes
        self.wait_seconds = wait_seconds
        self.in_use = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        if nbytes > self.max_bytes:
            raise ImageRejected(
                "too_many_pixels",
                f"Decoding this image needs about {nbytes >> 20} MiB; "
                f"the decode budget is {self.max_bytes >> 20} MiB.",
                too_large=True,
            )
        deadline = time.monotonic() + self.wait_seconds
        with self._cond:
            while self.in_use + nbytes > self.max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DecodeBusy(f"{self.in_use >> 20} MiB of decode memory in use")
                self._cond.wait(remaining)
            self.in_use += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= nbytes
                self._cond.notify_all()


FORMAT_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "MPO": "image/jpeg",
    "ICO": "image/x-icon",
}
# Decoded images are reduced right after loading to at least this size (or the draft size asked for):
# the model and PDQ need no more, and every later copy (rotation, RGB conversion, hashing) stays small.
WORKING_SIDE = 512


def at_least(draft_size: tuple[int, int] | None, side: int = WORKING_SIDE) -> tuple[int, int]:
    """A decode target no smaller than ``side`` (the service's default ``decode_min_side``)."""
    width, height = draft_size or (0, 0)
    return max(width, side), max(height, side)


def media_type_of(data: bytes) -> str:
    """The media type the bytes really are (never what an uploader declared); octet-stream if unknown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return FORMAT_MEDIA_TYPES.get(image.format or "", "application/octet-stream")
    except Exception:
        return "application/octet-stream"


def decoded_bytes_estimate(image: Image.Image) -> int:
    """Peak memory of loading ``image`` as opened (after any draft) and converting one full-size copy."""
    if image.mode in ("1", "L", "P"):
        per_pixel = 1
    elif image.mode.startswith("I;16"):
        per_pixel = 2
    else:
        per_pixel = 4  # Pillow keeps every multi-band 8-bit mode in 4 bytes a pixel
    width, height = image.size
    return width * height * (per_pixel + 4)


def check_byte_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise ImageRejected("empty_image", "The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ImageRejected(
            "image_too_large",
            f"The image is {len(data)} bytes; the limit is {max_bytes} bytes.",
            too_large=True,
        )


def _open_checked(
    data: bytes, max_bytes: int, max_pixels: int, draft_size: tuple[int, int] | None
) -> tuple[Image.Image, tuple[int, int], tuple[int, int]]:
    """Read the header only: byte and pixel limits checked, JPEG draft applied.

    Returns the opened image, the draft target and the image's true size (before the draft)."""
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
    target = draft_size or (WORKING_SIDE, WORKING_SIDE)
    try:
        image.seek(0)  # animated images: first frame
        if image.format == "JPEG":
            image.draft("RGB", target)  # DCT scaling: the decoder itself produces fewer pixels
    except Exception as exc:
        raise ImageRejected("corrupt_image", f"The image data could not be decoded: {exc}") from None
    return image, target, (width, height)


def admit(data: bytes, max_bytes: int, max_pixels: int, draft_size: tuple[int, int] | None = None) -> int:
    """Check an upload's limits from its header alone and return the memory decoding it will need.

    Cheap (no pixel is decoded), so a dispatcher can refuse bombs and reserve decode memory
    (:class:`DecodeBudget`) before handing the bytes to a worker process.
    """
    image, _, _ = _open_checked(data, max_bytes, max_pixels, draft_size)
    return decoded_bytes_estimate(image)


def decode_image(
    data: bytes,
    max_bytes: int,
    max_pixels: int,
    draft_size: tuple[int, int] | None = None,
    budget: DecodeBudget | None = None,
) -> Image.Image:
    """Return an RGB image decoded from ``data`` or raise :class:`ImageRejected`.

    ``draft_size`` lets JPEG decoding skip detail the model will not see (DCT scaling); other
    formats are reduced right after loading. The uploaded image's displayed size stays available
    as ``image.info["source_size"]`` and its real format as ``image.info["media_type"]``. With a
    ``budget``, the decode's memory is reserved before any pixel is decoded.
    """
    image, target, (width, height) = _open_checked(data, max_bytes, max_pixels, draft_size)
    media_type = FORMAT_MEDIA_TYPES.get(image.format or "", "application/octet-stream")
    try:
        with budget.reserve(decoded_bytes_estimate(image)) if budget else _no_reservation():
            image = _load_reduced(image, target)
            orientation = image.getexif().get(0x0112, 1)
            hashed = reference_rgb(image)  # before our own orientation and mode handling (see reference_rgb)
            image = to_rgb(ImageOps.exif_transpose(image))
    except (ImageRejected, DecodeBusy):
        raise
    except Exception as exc:  # truncated data, corrupt streams
        raise ImageRejected("corrupt_image", f"The image data could not be decoded: {exc}") from None
    # Draft decoding and reduction shrank the pixels; record the size the uploader's image really has.
    image.info["source_size"] = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image.info["media_type"] = media_type
    image.info[PDQ_SOURCE] = hashed
    return image


PDQ_SOURCE = "pdq_source"


def reference_rgb(image: Image.Image) -> Image.Image:
    """The pixels the reference PDQ hasher (ThreatExchange's Python, over Meta's C++) hashes: the image
    as stored — no EXIF rotation — and any mode turned into RGB by a plain ``convert("RGB")`` (alpha
    dropped, not composited on white; 16-bit values clipped, not scaled; greyscale stacked).
    Exchanged PDQ hashes only match another deployment's if both hash the same pixels; our own
    conversion (``to_rgb``, upright) stays what the model sees."""
    return image if image.mode == "RGB" else image.convert("RGB")


def pdq_source(image: Image.Image) -> Image.Image:
    """The image to hash with PDQ for a decoded upload (``decode_image`` keeps it; else the image itself)."""
    return image.info.get(PDQ_SOURCE, image)


@contextmanager
def _no_reservation() -> Iterator[None]:
    yield


def _load_reduced(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Load the pixels, then box-reduce by the largest whole factor that keeps twice ``target`` covered
    (the margin keeps the later antialiased resize, not the box filter, in charge of the final pixels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image.load()
    exif = image.getexif()
    factor = min(image.width // (2 * target[0]), image.height // (2 * target[1]))
    if factor < 2:
        return image
    # Modes Image.reduce cannot average, widened without losing what either conversion needs
    # (alpha for ours, the raw values for the reference's): 1 → L, P → RGBA, I;16 → I.
    widen = {"1": "L", "P": "RGBA"}.get(image.mode) or ("I" if image.mode.startswith("I;16") else None)
    if widen:
        image = image.convert(widen)
    reduced = image.reduce(factor)
    reduced.info.update(image.info)
    reduced.getexif().update(exif)  # keep the orientation tag for exif_transpose
    return reduced


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
