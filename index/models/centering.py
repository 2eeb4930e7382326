"""Centre embeddings on a model's mean direction before normalising.

Raw embeddings share a large common component (unrelated images score cosine ~0.96 on a random
ViT, and real CLIP is anisotropic too), so thresholds on raw cosine are fragile. Subtracting the
mean over a fixed background set and re-normalising spreads unrelated images around 0 while exact
and near copies stay near 1. The mean is part of the model fingerprint; it is a stored artefact
(index.models.artefacts), never recomputed per process.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
from PIL import Image

from index.embedder import Embedder, EmbedderInfo, ModelInput, l2_normalise
from index.models.artefacts import ModelArtefacts
from index.preprocess import PreprocessConfig


class CenteredEmbedder(Embedder):
    def __init__(self, base: Embedder, artefacts: ModelArtefacts):
        self.base = base
        self.artefacts = artefacts
        self.mean = np.asarray(artefacts.mean, dtype=np.float32)
        # The background images' centred embeddings: generic "not a brand's product" examples for the
        # look-alike membership models (scoring.lookalike), stored with the mean.
        self.background_vectors = l2_normalise(np.asarray(artefacts.background, dtype=np.float32) - self.mean)
        self._info = replace(base.info, centering_sha256=artefacts.centering_sha256)

    @property
    def runtime(self) -> str:
        return getattr(self.base, "runtime", "torch")

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    @property
    def draft_size(self) -> tuple[int, int] | None:
        return self.base.draft_size

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return l2_normalise(self.base.embed(images) - self.mean)

    @property
    def pixel_config(self) -> PreprocessConfig | None:
        return self.base.pixel_config

    @property
    def decodes_on_device(self) -> bool:
        return self.base.decodes_on_device

    def embed_inputs(
        self, inputs: Sequence[ModelInput], hashes: dict | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        vectors, failures = self.base.embed_inputs(inputs, hashes)
        centred = l2_normalise(vectors - self.mean)
        if failures:
            centred[list(failures)] = 0.0
        return centred, failures
