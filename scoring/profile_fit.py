"""Derive a model's similarity profile (``scoring.profile.ModelProfile``) from fixed offline images.

Unrelated pairs: every pair of distinct images among seeded procedural images and the photos that
ship with scikit-image. Copies: each of those sources under each transform family of
``index.augment`` (crops, overlays, screenshots, flips, pads, colour, re-compression) against its
source. ``min_match_similarity`` is the 99.5th percentile of the unrelated pairs: on this model,
1 unrelated pair in 200 reaches it — the precision-first choice; what share of copies clear it is
recorded (``copies_above``), so a weak backbone shows as weak instead of getting a lowered bar.
``min_distinctiveness`` (scoring.distinctiveness): how far those copies stand out of their neighbourhood
(their source against the other sources), at the 1st percentile — 99 in 100 copies CLIP matches stay
copies, while a new photo that is merely as near to one product as to the others does not.
"""

from __future__ import annotations

import math

import numpy as np

from index.augment import AUGMENTATIONS, recompress
from index.embedder import Embedder
from index.photos import packaged_photos
from index.synthetic import background_set
from scoring import distinctiveness
from scoring.profile import ModelProfile

UNRELATED_PERCENTILE = 99.5
SEED = 20_000  # not the centring set's images (index.synthetic.background_set's default seed)


def derive_profile(embedder: Embedder, procedural: int = 40, batch: int = 32) -> ModelProfile:
    sources = list(packaged_photos().values()) + background_set(procedural, (320, 320), seed=SEED)
    source_vectors = _embed(embedder, sources, batch)
    similarities = source_vectors @ source_vectors.T
    unrelated = similarities[np.triu_indices(len(sources), k=1)]
    rng = np.random.default_rng(SEED)
    families = [name for name in AUGMENTATIONS if name != "recompress"]
    copies, owners, names = [], [], []
    for i, source in enumerate(sources):
        for name in families:
            copies.append(recompress(AUGMENTATIONS[name](source, rng), rng))
            owners.append(i)
            names.append(name)
    to_sources = _embed(embedder, copies, batch) @ source_vectors.T
    copy_similarities = to_sources[np.arange(len(copies)), owners]
    threshold = math.ceil(float(np.percentile(unrelated, UNRELATED_PERCENTILE)) * 100) / 100
    own = np.zeros(to_sources.shape, dtype=bool)
    own[np.arange(len(copies)), owners] = True
    others = to_sources[~own].reshape(
        len(copies), len(sources) - 1
    )  # each copy's similarity to the other sources
    stand_out = copy_similarities - np.array([distinctiveness.background(row) for row in others])
    matched = stand_out[copy_similarities >= threshold]
    per_family = {
        name: round(float(np.mean(copy_similarities[np.array(names) == name] >= threshold)), 3)
        for name in families
    }
    stats = {
        "unrelated_pairs": int(len(unrelated)),
        "copies": int(len(copies)),
        "unrelated_p50": round(float(np.median(unrelated)), 4),
        f"unrelated_p{UNRELATED_PERCENTILE}": round(float(np.percentile(unrelated, UNRELATED_PERCENTILE)), 4),
        "copy_p10": round(float(np.percentile(copy_similarities, 10)), 4),
        "copy_p50": round(float(np.median(copy_similarities)), 4),
        "copies_above": round(float(np.mean(copy_similarities >= threshold)), 4),
        "copies_above_per_family": per_family,
        "copy_distinctiveness_p1_p10_p50": [round(float(np.percentile(matched, q)), 4) for q in (1, 10, 50)]
        if len(matched)
        else None,
    }
    return ModelProfile(
        model_fingerprint=embedder.info.fingerprint(),
        model=embedder.info.spec,
        min_match_similarity=threshold,
        min_distinctiveness=distinctiveness.min_distinctiveness(matched),
        stats=stats,
    )


def _embed(embedder: Embedder, images: list, batch: int) -> np.ndarray:
    return np.concatenate([embedder.embed(images[i : i + batch]) for i in range(0, len(images), batch)])
