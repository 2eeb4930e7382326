"""What every PyTorch image backbone shares: batching, fast preprocessing, device and precision."""
from __future__ import annotations

from abc import abstractmethod
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from index.embedder import Embedder, EmbedderInfo, l2_normalise
from index.preprocess import FastPreprocessor, PreprocessConfig


class TorchImageEmbedder(Embedder):
    """Subclasses set ``model``, ``reference_transform``, ``fast_config`` and ``_info``, and implement ``forward``."""

    model: torch.nn.Module
    reference_transform: Callable[[Image.Image], torch.Tensor]  # the library's own eval transform
    fast_config: PreprocessConfig | None  # None when the fast path cannot reproduce the library's transform
    _info: EmbedderInfo

    def __init__(self, device: str, batch_size: int = 32):
        self.device = torch.device(device)
        self.batch_size = batch_size

    def _finish_setup(self) -> None:
        self.model = self.model.eval().to(self.device)
        self._fast = FastPreprocessor(self.fast_config) if self.fast_config else None

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """Decoders may scale JPEGs down to this size while decoding (see index.images.decode_image)."""
        return self.fast_config.draft_size() if self.fast_config else None

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        if self._fast is not None:
            return self._fast(images)
        return torch.stack([self.reference_transform(image) for image in images])

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Image features for a preprocessed batch already on the device."""

    @torch.inference_mode()
    def forward_batch(self, batch: torch.Tensor) -> np.ndarray:
        batch = batch.to(self.device, non_blocking=True)
        if self.device.type == "cuda":  # half precision on GPU; CPU stays float32 (autocast there is slower)
            with torch.autocast("cuda", dtype=torch.float16):
                features = self.forward(batch)
        else:
            features = self.forward(batch)
        return l2_normalise(features.float().cpu().numpy())

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks = [self.forward_batch(self.preprocess(images[i : i + self.batch_size]))
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks)
