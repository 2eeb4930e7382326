"""Hashing weights and mapping foreign state dicts onto an architecture."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import torch


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class WeightsMismatchError(ValueError):
    pass


def map_state_dict_in_order(
    target: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s keys position by position, checking every shape.

    For checkpoints of the same architecture saved under another naming scheme (e.g. lukemelas'
    EfficientNet names onto timm's). Any count or shape mismatch is an error, never a partial load.
    """
    if len(target) != len(source):
        raise WeightsMismatchError(
            f"checkpoint has {len(source)} tensors, the architecture expects {len(target)}"
        )
    mapped = {}
    for position, ((target_key, target_tensor), (source_key, source_tensor)) in enumerate(
        zip(target.items(), source.items())
    ):
        if tuple(target_tensor.shape) != tuple(source_tensor.shape):
            raise WeightsMismatchError(
                f"tensor {position}: checkpoint '{source_key}' has shape {tuple(source_tensor.shape)}, "
                f"architecture '{target_key}' expects {tuple(target_tensor.shape)}"
            )
        mapped[target_key] = source_tensor
    return mapped
