"""Fast image preprocessing that reproduces a model's own eval transform.

Both open_clip and timm evaluate with: resize the shorter side to ``resize_to`` (bicubic, with
antialiasing), centre-crop ``crop`` × ``crop``, scale to [0, 1], normalise by mean/std. The
library transforms do that as several PIL/tensor passes per image. Here:

* JPEGs are decoded near the needed size (``draft``: DCT scaling in the decoder, no full-size
  decode of a 12-megapixel photo that ends up as 224 × 224);
* the centre crop is folded into the single resize (``Image.resize(box=...)``);
* the uint8 → float conversion and normalisation run once per batch, vectorised.

``tests/test_preprocess.py`` checks parity with the libraries' transforms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

_RESAMPLE = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "lanczos": Image.LANCZOS}


@dataclass(frozen=True)
class PreprocessConfig:
    resize_to: int  # length of the shorter side after resizing
    crop: int  # square centre crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    def draft_size(self) -> tuple[int, int]:
        """Ask JPEG decoders for at least the resize target: DCT scaling then does most of the downscaling."""
        return (self.resize_to, self.resize_to)


class FastPreprocessor:
    def __init__(self, config: PreprocessConfig):
        self.config = config
        self._mean = torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0

    def resize_and_crop(self, image: Image.Image) -> np.ndarray:
        """One resize of exactly the region that survives the centre crop; returns HWC uint8."""
        cfg = self.config
        width, height = image.size
        # Same output size rule as torchvision's Resize: short side exact, long side truncated.
        short, long = min(width, height), max(width, height)
        new_long = int(cfg.resize_to * long / short)
        resized_w, resized_h = (cfg.resize_to, new_long) if width <= height else (new_long, cfg.resize_to)
        left = int(round((resized_w - cfg.crop) / 2.0))
        top = int(round((resized_h - cfg.crop) / 2.0))
        sx, sy = width / resized_w, height / resized_h
        box = (left * sx, top * sy, (left + cfg.crop) * sx, (top + cfg.crop) * sy)
        resized = image.resize((cfg.crop, cfg.crop), _RESAMPLE[cfg.interpolation], box=box)
        return np.asarray(resized.convert("RGB") if resized.mode != "RGB" else resized)

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        batch = np.stack([self.resize_and_crop(image) for image in images])
        return self.normalise(batch)

    def normalise(self, batch: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 → (N, 3, H, W) float32, normalised."""
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        return (tensor - self._mean) / self._std
