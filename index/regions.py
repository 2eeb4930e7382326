"""Regions of a query photo embedded beside the whole image: its mirror image and centre crops.

One global descriptor per photo cannot carry *where* the product sits: a screenshot shrinks the
photo inside an app's chrome, a pad adds a border, a flip mirrors it. Embedding a few regions of
the query in the same model pass and taking, per reference, the best region's similarity finds
those copies again (measured with ``counterfeit eval`` on the generated set, efficientnet-lite0:
top-1 0.865 → 0.870 and right-and-above-the-match-similarity 0.651 → 0.740, distractors above it
unchanged at 0.104, with ``default``).

A region other than the whole image is a second look, and the best of several looks is higher by
chance alone; it counts ``REGION_PENALTY`` below its raw similarity, so unrelated photos do not
cross the match similarity more often than with the whole image alone.

Presets (``COUNTERFEIT_QUERY_REGIONS``) are named here, not built from if/elif ladders; each costs
one more model input per region per check.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

REGION_PENALTY = 0.05  # subtracted from a non-whole region's similarity (see the module note)


@dataclass(frozen=True)
class Region:
    name: str
    width: float = 1.0  # fraction of the image's width
    height: float = 1.0
    mirror: bool = False

    @property
    def is_whole(self) -> bool:
        return self.width == 1.0 and self.height == 1.0 and not self.mirror

    def crop(self, image: Image.Image) -> Image.Image:
        """The centred box of this region (mirrored if asked); the whole image is returned as is."""
        if self.width < 1.0 or self.height < 1.0:
            w, h = image.size
            bw, bh = max(1, round(w * self.width)), max(1, round(h * self.height))
            left, top = (w - bw) // 2, (h - bh) // 2
            image = image.crop((left, top, left + bw, top + bh))
        return ImageOps.mirror(image) if self.mirror else image


WHOLE = Region("whole")
QUERY_REGIONS: dict[str, tuple[Region, ...]] = {
    "whole": (WHOLE,),
    # The mirror finds flipped re-uploads; the 80 % centre finds screenshots and padded photos.
    "default": (WHOLE, Region("mirror", mirror=True), Region("centre-80", 0.8, 0.8)),
    # Also the 60 % centre (a product photographed small) and a screenshot-shaped box (app chrome
    # above and below a photo takes a third of the height).
    "wide": (WHOLE, Region("mirror", mirror=True), Region("centre-80", 0.8, 0.8), Region("centre-60", 0.6, 0.6),
             Region("screen", 0.8, 0.64)),
}


def query_regions(name: str) -> tuple[Region, ...]:
    try:
        return QUERY_REGIONS[name]
    except KeyError:
        raise ValueError(f"unknown query region preset {name!r}; known: {', '.join(QUERY_REGIONS)}") from None


def best_per_reference(similarities: np.ndarray, ids: np.ndarray, regions: tuple[Region, ...]
                       ) -> dict[int, tuple[float, str]]:
    """Search results of every region (row ``r`` of ``similarities``/``ids`` is ``regions[r]``'s top-k)
    → per reference id, its best (penalised) similarity and the region that gave it."""
    best: dict[int, tuple[float, str]] = {}
    for region, row_sims, row_ids in zip(regions, similarities, ids):
        penalty = 0.0 if region.is_whole else REGION_PENALTY
        for reference_id, similarity in zip(row_ids.tolist(), row_sims.tolist()):
            if reference_id < 0:
                continue
            value = similarity - penalty
            if reference_id not in best or value > best[reference_id][0]:
                best[reference_id] = (value, region.name)
    return best
