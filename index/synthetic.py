"""Seeded procedural images: product-like shapes and patterns that differ strongly per seed.

Used as the background set for centring embeddings, and by tests and evaluation sets.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def synthetic_image(seed: int, size: tuple[int, int] = (256, 256)) -> Image.Image:
    """A deterministic image: a coloured background, a pattern, and a few solid shapes."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    frequency = rng.uniform(2, 12) * 2 * np.pi / max(width, height)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * frequency + phase)
    if rng.random() < 0.5:  # some patterns are checkerboards instead of stripes
        cells = int(rng.integers(3, 12))
        wave = np.where(((xx * cells // width) + (yy * cells // height)) % 2 == 0, 1.0, -1.0)
    colour_a, colour_b = rng.integers(0, 256, size=(2, 3))
    mix = (wave[..., None] + 1) / 2
    array = (colour_a * mix + colour_b * (1 - mix)).astype(np.uint8)
    image = Image.fromarray(array, mode="RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = rng.integers(0, width - 8), rng.integers(0, height - 8)
        x1 = int(min(width, x0 + rng.integers(width // 8, width // 2)))
        y1 = int(min(height, y0 + rng.integers(height // 8, height // 2)))
        fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
        box = (int(x0), int(y0), x1, y1)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    return image


def background_set(
    count: int = 48, size: tuple[int, int] = (224, 224), seed: int = 10_000
) -> list[Image.Image]:
    """A fixed set of images used to estimate an embedding model's mean direction."""
    return [synthetic_image(seed + i, size) for i in range(count)]
