"""PDQ as tensor ops, so it runs where the pixels already are (the GPU after nvJPEG).

The same matrices as index/pdq.py (the reference's Jarosz filter and decimation as ``A · luma · Bᵀ``),
as two dense products on the device. The 64 × 64 results of a whole batch cross to the CPU in one
copy (one device sync per batch, not per image) for the DCT and the bits.
``tests/index/test_pdq_reference.py`` checks the hashes against the reference implementation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch

from index.pdq import PdqHash, hash_from_small, sampled_filter


@lru_cache(maxsize=512)
def _filter_on(length: int, device: str) -> torch.Tensor:
    return torch.from_numpy(sampled_filter(length)[0]).to(device)


def filtered_luma(rgb: torch.Tensor) -> torch.Tensor:
    """``3 × H × W`` RGB (uint8 or 0…255 float) → the 64 × 64 filtered, decimated luma, on the same device."""
    rgb = rgb.float()
    luma = rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114
    height, width = luma.shape
    device = str(luma.device)
    return _filter_on(height, device) @ luma @ _filter_on(width, device).T


def hashes_of(smalls: Sequence[torch.Tensor]) -> list[PdqHash]:
    """The hashes of several :func:`filtered_luma` results, with one copy to the CPU."""
    if not smalls:
        return []
    return [hash_from_small(small) for small in torch.stack(list(smalls)).cpu().numpy()]


def pdq_of_rgb(rgb: torch.Tensor) -> PdqHash:
    """PDQ of one ``3 × H × W`` RGB tensor on any device."""
    return hashes_of([filtered_luma(rgb)])[0]
