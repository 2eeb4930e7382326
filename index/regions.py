"""Regions of a photo embedded beside the whole image: a query's mirror image and centre crops, a
reference's centre and corner crops.

One global descriptor per photo cannot carry *where* the product sits: a screenshot shrinks the
photo inside an app's chrome, a pad adds a border, a flip mirrors it. Embedding a few regions of
the query in the same model pass and taking, per reference, the best region's similarity finds
those copies again (``counterfeit eval`` on the generated copy set, efficientnet-lite0, reference
regions on: 3-way accuracy 0.738 → 0.783 with the query's ``default`` regions, distractors
``inconclusive`` unchanged at 0.979; README, Evaluation).

A region other than the whole image is a second look, and the best of several looks is higher by
chance alone; it counts ``REGION_PENALTY`` below its raw similarity, so unrelated photos do not
cross the match similarity more often than with the whole image alone.

References get regions too (``COUNTERFEIT_REFERENCE_REGIONS``): a listing photo that is a large
crop of a registered one (60–80 % of it) matches the reference's corner or centre crop far better
than its whole image (the same set: large-crop top-1 0.71 → 0.84). Reference regions
are embedded once, at registration or reindex, and stored with the embedding; in the index each is
one more vector of its reference (index/vector_index.py).

Presets are named here, not built from if/elif ladders; each region costs one more model input per
check (query) or per registration (reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    import torch

REGION_PENALTY = 0.05  # subtracted from a non-whole region's similarity (see the module note)


@dataclass(frozen=True)
class Region:
    name: str
    width: float = 1.0  # fraction of the image's width
    height: float = 1.0
    mirror: bool = False
    x: float = 0.5  # where the box's centre sits, as a fraction of the image (the box is kept inside it)
    y: float = 0.5

    @property
    def is_whole(self) -> bool:
        return self.width == 1.0 and self.height == 1.0 and not self.mirror

    def box(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """``(left, top, right, bottom)`` of this region in an image of that size; None for all of it."""
        if self.width >= 1.0 and self.height >= 1.0:
            return None
        bw, bh = max(1, round(width * self.width)), max(1, round(height * self.height))
        left = min(max(round(self.x * width - bw / 2), 0), width - bw)
        top = min(max(round(self.y * height - bh / 2), 0), height - bh)
        return left, top, left + bw, top + bh

    def crop(self, image: Image.Image) -> Image.Image:
        """This region's box (mirrored if asked); the whole image is returned as is."""
        box = self.box(*image.size)
        if box is not None:
            image = image.crop(box)
        return ImageOps.mirror(image) if self.mirror else image

    def crop_tensor(self, image: "torch.Tensor") -> "torch.Tensor":
        """The same for a ``C × H × W`` tensor (an image decoded on the model's device)."""
        box = self.box(int(image.shape[-1]), int(image.shape[-2]))
        if box is not None:
            left, top, right, bottom = box
            image = image[..., top:bottom, left:right]
        return image.flip(-1) if self.mirror else image


@dataclass(frozen=True)
class EncodedRegion:
    """A model input: a region of an encoded upload, for models that decode on their device. A check
    submits the upload's bytes (whole image, hashed there) and one of these per other query region;
    the device decodes the bytes once per batch and cuts every region from the decoded pixels."""

    data: bytes
    region: Region


WHOLE = Region("whole")
QUERY_REGIONS: dict[str, tuple[Region, ...]] = {
    "whole": (WHOLE,),
    # The 80 % centre finds screenshots and padded photos: one more model input per check.
    "default": (WHOLE, Region("centre-80", 0.8, 0.8)),
    # Also the mirror image (flipped re-uploads beyond what dihedral PDQ catches: a flip plus an
    # overlay), the 60 % centre (a product photographed small) and a screenshot-shaped box (app
    # chrome above and below a photo takes a third of the height).
    "wide": (
        WHOLE,
        Region("centre-80", 0.8, 0.8),
        Region("mirror", mirror=True),
        Region("centre-60", 0.6, 0.6),
        Region("screen", 0.8, 0.64),
    ),
}


REFERENCE_REGIONS: dict[str, tuple[Region, ...]] = {
    "whole": (WHOLE,),
    "default": (
        WHOLE,
        Region("centre-70", 0.7, 0.7),
        Region("top-left", 0.7, 0.7, x=0, y=0),
        Region("top-right", 0.7, 0.7, x=1, y=0),
        Region("bottom-left", 0.7, 0.7, x=0, y=1),
        Region("bottom-right", 0.7, 0.7, x=1, y=1),
    ),
}


def query_regions(name: str) -> tuple[Region, ...]:
    try:
        return QUERY_REGIONS[name]
    except KeyError:
        raise ValueError(f"unknown query region preset {name!r}; known: {', '.join(QUERY_REGIONS)}") from None


def reference_regions(name: str) -> tuple[Region, ...]:
    try:
        return REFERENCE_REGIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown reference region preset {name!r}; known: {', '.join(REFERENCE_REGIONS)}"
        ) from None


def draft_for_regions(
    draft_size: tuple[int, int] | None, regions: tuple[Region, ...]
) -> tuple[int, int] | None:
    """The smallest JPEG decode target that still gives the model full resolution in every region.

    A region keeping a fraction ``f`` of a side is resized from ``f`` of the decoded pixels, so the decode
    needs ``1 / f`` of the model's size there (a 70 % corner of a 224-pixel decode would be upsampled to
    224). Paths that hash PDQ decode larger anyway (``images.at_least``); the others — reindex, the embed
    pipeline — need no more than this, and DCT scaling makes a smaller target much cheaper: a 3000 × 2000
    JPEG decodes at 1/8 (375 × 250) for the whole image, at 1/4 for 70 % regions, instead of at 1/2."""
    if draft_size is None:
        return None
    fraction = min(min(region.width, region.height, 1.0) for region in regions)
    width, height = draft_size
    return ceil(width / fraction), ceil(height / fraction)


def crops(image: Image.Image, regions: tuple[Region, ...]) -> list[Image.Image]:
    return [region.crop(image) for region in regions]


def pack(region_vectors: np.ndarray) -> bytes | None:
    """A reference's region vectors (all rows after the whole image's) as stored; None when there are none."""
    return np.ascontiguousarray(region_vectors, dtype=np.float32).tobytes() if len(region_vectors) else None


def unpack(data: bytes | None, dimension: int) -> np.ndarray | None:
    return None if not data else np.frombuffer(data, dtype=np.float32).reshape(-1, dimension)


def best_per_reference(
    similarities: np.ndarray,
    ids: np.ndarray,
    regions: tuple[Region, ...],
    reference_regions: np.ndarray | None = None,
) -> dict[int, tuple[float, str, int]]:
    """Search results of every query region (row ``r`` of ``similarities``/``ids`` is ``regions[r]``'s top-k,
    ``reference_regions`` which vector of each reference matched) → per reference id, its best (penalised)
    similarity, the query region that gave it and the reference's region number (0: its whole image)."""
    matched = reference_regions if reference_regions is not None else np.zeros(np.shape(ids), dtype=np.int64)
    best: dict[int, tuple[float, str, int]] = {}
    for region, row_sims, row_ids, row_regions in zip(regions, similarities, ids, matched):
        penalty = 0.0 if region.is_whole else REGION_PENALTY
        for reference_id, similarity, number in zip(
            row_ids.tolist(), row_sims.tolist(), row_regions.tolist()
        ):
            if reference_id < 0:
                continue
            value = similarity - penalty
            if reference_id not in best or value > best[reference_id][0]:
                best[reference_id] = (value, region.name, number)
    return best


def region_name(regions: tuple[Region, ...], number: int) -> str:
    """The name of a reference's ``number``-th vector under its preset (``region-<n>`` if the preset has fewer)."""
    return regions[number].name if number < len(regions) else f"region-{number}"
