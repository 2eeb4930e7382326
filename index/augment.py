"""Seeded image transformations of the kinds DISC21 used (crops, text and emoji overlays,
screenshots, re-compression, colour changes, padding, flips), written with Pillow.

AugLy implements these too, but its last release pins Pillow < 9 and calls APIs Pillow 10 removed,
so it cannot be installed beside the rest of this project.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Augmentation = Callable[[Image.Image, np.random.Generator], Image.Image]


def recompress(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = rng.uniform(0.4, 0.9)
    small = image.resize(
        (max(32, int(image.width * scale)), max(32, int(image.height * scale))), Image.BILINEAR
    )
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=int(rng.integers(25, 70)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop(image: Image.Image, rng: np.random.Generator, low: float = 0.02, high: float = 0.08) -> Image.Image:
    fraction = rng.uniform(low, high)
    dx, dy = int(image.width * fraction / 2), int(image.height * fraction / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def big_crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    keep = rng.uniform(0.6, 0.8)
    w, h = int(image.width * keep), int(image.height * keep)
    left, top = int(rng.integers(0, image.width - w + 1)), int(rng.integers(0, image.height - h + 1))
    return image.crop((left, top, left + w, top + h))


def text_overlay(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, image.height // 12))
    text = str(
        rng.choice(["SALE -70%", "100% ORIGINAL", "free shipping", "best price!!", "shop.example.com"])
    )
    xy = (int(rng.integers(0, image.width // 2)), int(rng.integers(0, image.height * 3 // 4)))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    draw.text(xy, text, fill=colour, font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return out


def emoji_overlay(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A yellow smiley sticker covering 10–20 % of the width."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    size = int(image.width * rng.uniform(0.1, 0.2))
    x, y = int(rng.integers(0, image.width - size)), int(rng.integers(0, image.height - size))
    draw.ellipse(
        (x, y, x + size, y + size), fill=(255, 214, 0), outline=(120, 80, 0), width=max(1, size // 20)
    )
    eye = max(1, size // 10)
    for ex in (x + size // 3, x + 2 * size // 3):
        draw.ellipse((ex - eye, y + size // 3 - eye, ex + eye, y + size // 3 + eye), fill=(40, 30, 0))
    draw.arc(
        (x + size // 4, y + size // 3, x + 3 * size // 4, y + 3 * size // 4),
        20,
        160,
        fill=(40, 30, 0),
        width=max(1, size // 15),
    )
    return out


def screenshot(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo shown inside a phone app: status bar, title bar, buttons below, scaled down."""
    width = image.width
    scaled = image.resize((int(width * 0.8), int(image.height * 0.8)), Image.BILINEAR)
    canvas = Image.new("RGB", (width, int(image.height * 1.25)), (245, 245, 245))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, canvas.height // 14), fill=(30, 30, 30))
    draw.rectangle((0, canvas.height // 14, width, canvas.height // 7), fill=(0, 110, 200))
    font = ImageFont.load_default(size=max(10, canvas.height // 30))
    draw.text((10, canvas.height // 12), "Marketplace", fill=(255, 255, 255), font=font)
    canvas.paste(scaled, ((width - scaled.width) // 2, canvas.height // 7 + 4))
    draw.rectangle(
        (width // 8, canvas.height - canvas.height // 12, 7 * width // 8, canvas.height - 6),
        fill=(255, 140, 0),
    )
    return canvas


def colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.6, 1.4))
    return ImageEnhance.Color(out).enhance(rng.uniform(0.3, 1.7))


def padding(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    border = int(min(image.size) * rng.uniform(0.05, 0.2))
    return ImageOps.expand(image, border=border, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))


def flip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(image)


AUGMENTATIONS: dict[str, Augmentation] = {
    "recompress": recompress,
    "crop": crop,
    "big_crop": big_crop,
    "text": text_overlay,
    "emoji": emoji_overlay,
    "screenshot": screenshot,
    "colour": colour,
    "padding": padding,
    "flip": flip,
}


def augment(image: Image.Image, rng: np.random.Generator, count: int = 2) -> tuple[Image.Image, list[str]]:
    """Apply ``count`` distinct random augmentations, then re-compress like an upload would be."""
    names = list(rng.choice([n for n in AUGMENTATIONS if n != "recompress"], size=count, replace=False))
    for name in names:
        image = AUGMENTATIONS[name](image, rng)
    return recompress(image, rng), [*names, "recompress"]
