"""Turn uploaded bytes into an RGB image (or a worker's prepared pixels), mapping rejections to HTTP errors."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from PIL import Image

from index.images import DecodeBudget, DecodeBusy, ImageRejected, admit, decode_image
from index.prepare import CpuWorkers, Prepared, PrepareSpec, WorkerCrashed, prepare
from service.core.errors import InvalidInput, MalformedInput, TooLarge, overloaded


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    draft_size: tuple[int, int] | None = None  # decode JPEGs only as large as the model needs
    budget: DecodeBudget | None = None  # process-wide decode memory shared by concurrent requests


@contextmanager
def rejections_as_errors() -> Iterator[None]:
    try:
        yield
    except ImageRejected as exc:
        kind = TooLarge if exc.too_large else (MalformedInput if exc.code == "empty_image" else InvalidInput)
        raise kind(exc.code, exc.message) from None
    except DecodeBusy as exc:
        raise overloaded(f"decoding too many large images: {exc}", retry_after=2) from None
    except WorkerCrashed as exc:
        raise InvalidInput("undecodable_image", f"{exc}; the image is refused.") from None


def decode_upload(data: bytes, limits: ImageLimits) -> Image.Image:
    with rejections_as_errors():
        return decode_image(
            data,
            max_bytes=limits.max_bytes,
            max_pixels=limits.max_pixels,
            draft_size=limits.draft_size,
            budget=limits.budget,
        )


def prepare_upload(data: bytes, limits: ImageLimits, workers: CpuWorkers, spec: PrepareSpec) -> Prepared:
    """Check the limits from the header here, reserve the decode memory here (the budget is this
    process's), and let a CPU worker do the decoding, hashing and resizing. Blocks: call it on a thread."""
    with rejections_as_errors():
        need = admit(data, limits.max_bytes, limits.max_pixels, limits.draft_size)
        with limits.budget.reserve(need) if limits.budget else _nothing():
            prepared = workers.call(prepare, data, spec)
        prepared.raise_if_rejected()
    return prepared


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def decode_reference_image(load: Callable[[], bytes], limits: ImageLimits) -> Image.Image | str:
    """A stored reference's image (accepted once, so no size limits now), or why it cannot be had."""
    try:
        return decode_image(load(), max_bytes=1 << 40, max_pixels=1 << 40, draft_size=limits.draft_size)
    except FileNotFoundError:
        return "missing_blob: the image file is not in the blob store"
    except ImageRejected as exc:
        return f"{exc.code}: {exc.message}"
