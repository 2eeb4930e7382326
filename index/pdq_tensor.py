"""PDQ as tensor ops, so it runs where the pixels already are (the GPU after nvJPEG).

The same matrices as index/pdq.py (the reference's Jarosz filter and decimation as ``A · luma · Bᵀ``),
as two dense products on the device; the 64 × 64 result goes to the CPU for the DCT and the bits.
``tests/test_pdq.py`` checks the hashes against the reference implementation.
"""
from __future__ import annotations

import torch

from index.pdq import PdqHash, hash_from_small, sampled_filter


def pdq_of_rgb(rgb: torch.Tensor) -> PdqHash:
    """PDQ of a ``3 × H × W`` RGB tensor (uint8 or 0…255 float) on any device."""
    rgb = rgb.float()
    luma = rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114
    height, width = luma.shape
    rows = torch.from_numpy(sampled_filter(height)[0]).to(luma.device)
    cols = torch.from_numpy(sampled_filter(width)[0]).to(luma.device)
    return hash_from_small((rows @ luma @ cols.T).cpu().numpy())
