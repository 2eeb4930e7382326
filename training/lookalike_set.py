"""A procedurally generated look-alike set: genuine product designs, their counterfeit variants, and
*new photos* of each (other pose, background, lighting, camera) — never re-uploads of a bank photo.

Each brand has one genuine design (a product silhouette in its colours, a lettered logo with an
emblem, stitching, stripes). Counterfeiters make a few variants of it, each changing what fakes get
wrong: letterforms and spacing, logo proportions, colours, stitching pitch, a detail. A photo puts
the product at a random scale, position and tilt on a busy background, under other light, blurred
and JPEG-compressed. Banks hold photos of the genuine design and of its fakes; queries are other
photos of the same designs, and distractors are products of brands that registered nothing.
"""

from __future__ import annotations

import colorsys
import io
import string
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from index.synthetic import synthetic_image

CANVAS = 512
SHAPES = ("bag", "shoe", "box", "bottle", "tee")
EMBLEMS = ("circle", "triangle", "diamond", "bar")


@dataclass(frozen=True)
class Design:
    shape: str
    body: tuple[int, int, int]
    accent: tuple[int, int, int]
    logo_colour: tuple[int, int, int]
    letters: str
    font_size: int
    spacing: float  # extra pixels between letters, as a fraction of the font size
    logo_scale: float
    logo_y: float  # vertical position of the logo on the body (fraction)
    emblem: str
    stitch: int  # stitching pitch in pixels
    stripes: int
    width: float  # body width, fraction of the canvas


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.95)
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h, s, v))


def _hue_shift(colour: tuple[int, int, int], shift: float) -> tuple[int, int, int]:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb((h + shift) % 1.0, s, v))


def genuine_design(seed: int) -> Design:
    rng = np.random.default_rng([seed, 1])
    return Design(
        shape=SHAPES[int(rng.integers(len(SHAPES)))],
        body=_colour(rng),
        accent=_colour(rng),
        logo_colour=_colour(rng),
        letters="".join(rng.choice(list(string.ascii_uppercase), size=int(rng.integers(3, 6)))),
        font_size=int(rng.integers(44, 64)),
        spacing=float(rng.uniform(0.05, 0.25)),
        logo_scale=1.0,
        logo_y=float(rng.uniform(0.35, 0.6)),
        emblem=EMBLEMS[int(rng.integers(len(EMBLEMS)))],
        stitch=int(rng.integers(10, 18)),
        stripes=int(rng.integers(1, 4)),
        width=float(rng.uniform(0.55, 0.7)),
    )


def fake_design(genuine: Design, seed: int, variant: int) -> Design:
    """A counterfeiter's version: three of the things fakes get wrong, each clearly but not grossly."""
    rng = np.random.default_rng([seed, 2, variant])
    changes = rng.choice(7, size=3, replace=False)
    fake = genuine
    for change in changes:
        if change == 0:  # colours a little off
            shift = float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.1))
            fake = replace(
                fake, logo_colour=_hue_shift(fake.logo_colour, shift), accent=_hue_shift(fake.accent, shift)
            )
        elif change == 1:  # letterforms: one letter wrong
            i = int(rng.integers(len(fake.letters)))
            other = rng.choice([c for c in string.ascii_uppercase if c != fake.letters[i]])
            fake = replace(fake, letters=fake.letters[:i] + other + fake.letters[i + 1 :])
        elif change == 2:  # letter spacing
            fake = replace(fake, spacing=fake.spacing + float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.3)))
        elif change == 3:  # logo proportions
            fake = replace(fake, logo_scale=float(rng.choice([0.72, 0.8, 1.25, 1.35])))
        elif change == 4:  # stitching pitch
            fake = replace(fake, stitch=fake.stitch * 2 if rng.random() < 0.5 else max(5, fake.stitch // 2))
        elif change == 5:  # a detail: the emblem
            fake = replace(fake, emblem=str(rng.choice([e for e in EMBLEMS if e != fake.emblem])))
        else:  # body proportions and stripes
            fake = replace(
                fake, width=fake.width * float(rng.choice([0.85, 1.15])), stripes=fake.stripes % 3 + 1
            )
    return fake


def render_product(design: Design) -> Image.Image:
    """The product alone, on a transparent canvas."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    w = int(CANVAS * design.width)
    x0, x1 = (CANVAS - w) // 2, (CANVAS + w) // 2
    y0, y1 = int(CANVAS * 0.25), int(CANVAS * 0.85)
    if design.shape == "bag":
        draw.arc((x0 + w // 5, y0 - w // 3, x1 - w // 5, y0 + w // 4), 180, 360, fill=design.accent, width=14)
        body = [(x0 + 20, y0), (x1 - 20, y0), (x1, y1), (x0, y1)]
    elif design.shape == "shoe":
        y0 = int(CANVAS * 0.4)
        draw.rounded_rectangle((x0 - 30, y1 - 40, x1 + 40, y1), 18, fill=design.accent)
        body = [(x0, y1 - 40), (x0 + 10, y0 + 30), (x0 + w // 2, y0), (x1 - 30, y0 + 60), (x1 + 30, y1 - 40)]
    elif design.shape == "bottle":
        draw.rectangle((CANVAS // 2 - 30, y0 - 70, CANVAS // 2 + 30, y0 + 10), fill=design.accent)
        body = [(x0 + 30, y0), (x1 - 30, y0), (x1, y0 + 60), (x1, y1), (x0, y1), (x0, y0 + 60)]
    elif design.shape == "tee":
        body = [
            (x0, y0),
            (x0 - 70, y0 + 90),
            (x0 - 30, y0 + 130),
            (x0, y0 + 100),
            (x0, y1),
            (x1, y1),
            (x1, y0 + 100),
            (x1 + 30, y0 + 130),
            (x1 + 70, y0 + 90),
            (x1, y0),
        ]
    else:  # box
        body = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    draw.polygon(body, fill=design.body)
    top = min(p[1] for p in body)
    for i in range(design.stripes):  # stripes across the lower body
        y = y1 - 40 - 24 * (i + 1)
        draw.rectangle((x0 + 6, y, x1 - 6, y + 10), fill=design.accent)
    for x in range(x0 + 12, x1 - 12, design.stitch):  # stitching along the top edge and the bottom
        draw.line((x, top + 12, x + design.stitch // 2, top + 12), fill=design.logo_colour, width=3)
        draw.line((x, y1 - 12, x + design.stitch // 2, y1 - 12), fill=design.logo_colour, width=3)
    _draw_logo(image, design, (x0 + x1) // 2, int(top + (y1 - top) * design.logo_y))
    return image


def _draw_logo(image: Image.Image, design: Design, cx: int, cy: int) -> None:
    size = max(12, int(design.font_size * design.logo_scale))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image)
    advances = [draw.textlength(c, font=font) + design.spacing * size for c in design.letters]
    x = cx - sum(advances) / 2 + size * 0.4
    for c, advance in zip(design.letters, advances):
        draw.text((x, cy), c, fill=design.logo_colour, font=font, anchor="lm")
        x += advance
    e = size * 0.45
    ex = cx - sum(advances) / 2 - size * 0.3
    box = (ex - e, cy - e, ex + e, cy + e)
    if design.emblem == "circle":
        draw.ellipse(box, fill=design.accent, outline=design.logo_colour, width=3)
    elif design.emblem == "triangle":
        draw.polygon([(ex, cy - e), (ex + e, cy + e), (ex - e, cy + e)], fill=design.accent)
    elif design.emblem == "diamond":
        draw.polygon([(ex, cy - e), (ex + e, cy), (ex, cy + e), (ex - e, cy)], fill=design.accent)
    else:
        draw.rectangle((ex - e, cy - e / 3, ex + e, cy + e / 3), fill=design.accent)


def photograph(product: Image.Image, rng: np.random.Generator, size: int = 384) -> Image.Image:
    """A new photo of the product: its own background, framing, tilt, light, focus and compression."""
    background = synthetic_image(int(rng.integers(1 << 30)), (size, size))
    background = background.filter(
        ImageFilter.GaussianBlur(float(rng.uniform(1, 4)))
    )  # out-of-focus backdrop
    scale = rng.uniform(0.6, 0.95)
    side = int(size * scale)
    item = product.rotate(float(rng.uniform(-12, 12)), resample=Image.BICUBIC, expand=False).resize(
        (side, side), Image.LANCZOS
    )
    ox = int(rng.integers(-size // 10, size - side + size // 10 + 1))
    oy = int(rng.integers(-size // 10, size - side + size // 10 + 1))
    background.paste(item, (ox, oy), item)
    photo = ImageEnhance.Brightness(background).enhance(float(rng.uniform(0.8, 1.2)))
    photo = ImageEnhance.Contrast(photo).enhance(float(rng.uniform(0.85, 1.15)))
    if rng.random() < 0.5:
        photo = photo.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    buffer = io.BytesIO()
    photo.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(60, 95)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@dataclass(frozen=True)
class LookalikePhoto:
    brand: str
    label: str  # "authentic" | "counterfeit" | "distractor"
    role: str  # "reference" | "query"
    design: str  # which design it shows: "genuine", "fake-<n>", or "distractor"
    image: Image.Image


def lookalike_set(
    brands: int = 4,
    per_bank: int = 16,
    queries_per_design: int = 6,
    fakes_per_brand: int = 2,
    distractor_brands: int = 4,
    seed: int = 0,
) -> list[LookalikePhoto]:
    """Banks of ``per_bank`` photos each (the counterfeit bank spread over the fake variants), and new
    photos of every design as queries; distractors are other brands' genuine products, never registered."""
    rng = np.random.default_rng([seed, 3])
    photos: list[LookalikePhoto] = []
    for b in range(brands + distractor_brands):
        brand_seed = seed * 1000 + b
        genuine = genuine_design(brand_seed)
        if b >= brands:
            product = render_product(genuine)
            photos += [
                LookalikePhoto(f"other-{b}", "distractor", "query", "distractor", photograph(product, rng))
                for _ in range(queries_per_design)
            ]
            continue
        brand = f"brand-{b}"
        designs = [("genuine", "authentic", genuine)] + [
            (f"fake-{v}", "counterfeit", fake_design(genuine, brand_seed, v)) for v in range(fakes_per_brand)
        ]
        for name, label, design in designs:
            product = render_product(design)
            bank = per_bank if label == "authentic" else -(-per_bank // fakes_per_brand)
            photos += [
                LookalikePhoto(brand, label, "reference", name, photograph(product, rng)) for _ in range(bank)
            ]
            photos += [
                LookalikePhoto(brand, label, "query", name, photograph(product, rng))
                for _ in range(queries_per_design)
            ]
    return photos


def write_lookalike_set(out: Path, photos: list[LookalikePhoto]) -> Path:
    """JPEG files plus a manifest (``training.dataset`` format) for ``counterfeit eval``."""
    from training.manifest import Item, write_manifest

    out.mkdir(parents=True, exist_ok=True)
    items = []
    for i, photo in enumerate(photos):
        path = out / f"{photo.role}-{i:05d}-{photo.brand}-{photo.design}.jpg"
        photo.image.save(path, "JPEG", quality=95)
        items.append(
            Item(
                path=path,
                role=photo.role,
                brand=None if photo.label == "distractor" else photo.brand,
                label=photo.label,
                source=f"{photo.brand}/{photo.design}",
                transform="new-photo" if photo.role == "query" else "",
            )
        )
    manifest = out / "manifest.csv"
    write_manifest(manifest, items, out)
    return manifest
