"""An evaluation set anyone can rebuild offline, seeded: reference banks and transformed queries.

Sources are the photos scikit-image ships plus procedural ones, varied as listings are: every other
one a product photographed on a busy background (a lettered logo, emblem, stitching: the look-alike
set's renderer), the rest flat patterns and shapes (packaging prints). Each source goes to
the known-fake bank, the authentic bank, or the distractors (in no bank). Every source gets
transformed copies as queries; a distractor's copies should come back ``inconclusive``.

Layout (also listed in ``manifest.csv``)::

    references/<brand>/<authentic|counterfeit>/<source>.png
    queries/<authentic|counterfeit|distractor>/<source>--<n>.jpg
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from index.augment import augment
from index.photos import packaged_photos
from index.synthetic import synthetic_image
from training.lookalike_set import genuine_design, photograph, render_product
from training.manifest import Item, write_manifest

BRANDS = ("acme", "globex", "initech", "umbrella")
LABELS = ("counterfeit", "authentic")


def build_eval_set(
    out: Path, seed: int = 0, procedural: int = 60, copies: int = 3, distractor_share: float = 0.2
) -> list[Item]:
    out = Path(out)
    rng = np.random.default_rng(seed)
    sources = {name: image for name, image in packaged_photos().items()}
    for i in range(procedural):
        sources[f"product{seed}_{i}"] = _procedural_source(seed * 100_000 + i, product=i % 2 == 0)
    names = list(sources)
    rng.shuffle(names)
    n_distractors = int(len(names) * distractor_share)
    items: list[Item] = []
    for position, name in enumerate(names):
        if position < n_distractors:
            brand, label = None, "distractor"
        else:
            brand, label = BRANDS[position % len(BRANDS)], LABELS[position % 2]
            path = out / "references" / brand / label / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            sources[name].save(path)
            items.append(Item(path, "reference", brand, label, name))
        for copy in range(copies):
            image, names_applied = augment(sources[name], rng, count=int(rng.integers(1, 3)))
            path = out / "queries" / label / f"{name}--{copy}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, quality=90)
            items.append(
                Item(
                    path, "query", brand, label, name, "+".join(n for n in names_applied if n != "recompress")
                )
            )
    write_manifest(out / "manifest.csv", items, out)
    return items


def _procedural_source(seed: int, product: bool) -> Image.Image:
    if not product:
        return synthetic_image(seed, size=(512, 512))
    return photograph(render_product(genuine_design(seed)), np.random.default_rng([seed, 7]), size=512)
