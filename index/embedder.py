"""The Embedder interface: a batch of PIL images in, L2-normalised float32 vectors out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image

from index.preprocess import PreprocessConfig
from index.regions import EncodedRegion

# What a model batch may hold per image: model-ready ``uint8`` pixels (crop × crop × 3, from a CPU
# worker), a decoded PIL image, or encoded bytes the model decodes on its own device (all of it, or one
# region of it: index.regions.EncodedRegion).
ModelInput = Union[np.ndarray, Image.Image, bytes, EncodedRegion]


@dataclass(frozen=True)
class EmbedderInfo:
    """What an embedding means. Two embedders with equal fingerprints produce comparable vectors."""

    spec: str  # e.g. "open_clip:tiny-random"
    dimension: int
    weights_kind: str  # "pretrained", "checkpoint" or "random (TEST ONLY)"
    weights_sha256: str | None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    normalisation: str = "l2"
    centering_sha256: str | None = None  # hash of the mean vector subtracted before normalising

    @property
    def is_test_only(self) -> bool:
        return self.weights_kind.startswith("random")

    def fingerprint(self) -> str:
        """Stable short hash of everything that changes the embedding space."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fingerprint": self.fingerprint(), "test_only": self.is_test_only}


class Embedder(ABC):
    """Maps images to unit vectors; ``embed`` must be deterministic for a given fingerprint."""

    @property
    @abstractmethod
    def info(self) -> EmbedderInfo: ...

    @abstractmethod
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Return an ``(len(images), dimension)`` float32 array with unit-norm rows."""

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """Smallest decode size that loses nothing the model sees (JPEG draft decoding); None = full size."""
        return None

    @property
    def dimension(self) -> int:
        return self.info.dimension

    @property
    def pixel_config(self) -> PreprocessConfig | None:
        """The resize/crop that turns an image into this model's ``uint8`` input; None when only PIL images work."""
        return None

    @property
    def decodes_on_device(self) -> bool:
        """True when ``embed_inputs`` decodes JPEG bytes on the model's device (e.g. nvJPEG on CUDA)."""
        return False

    def embed_inputs(
        self, inputs: Sequence[ModelInput], hashes: dict | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        """One batch of mixed inputs → ``(vectors, failures)``; a failed row is zeros and ``failures[i]`` says why.

        With a ``hashes`` dict, the PDQ hash of every *bytes* input that decoded is stored in it under
        its position (the model decoded those bytes, so it hashes them too). The default converts
        everything to PIL images; backbones override it to batch on the device."""
        from index.images import ImageRejected, at_least, decode_image, pdq_source

        images: list[Image.Image] = []
        rows: list[int] = []
        failures: dict[int, str] = {}
        for i, item in enumerate(inputs):
            try:
                if isinstance(item, EncodedRegion):
                    item = item.region.crop(
                        decode_image(item.data, 1 << 62, 1 << 62, draft_size=at_least(self.draft_size))
                    )
                elif isinstance(item, bytes):
                    item = decode_image(item, 1 << 62, 1 << 62, draft_size=at_least(self.draft_size))
                    if hashes is not None:
                        from index.pdq import compute_pdq

                        hashes[i] = compute_pdq(pdq_source(item))
                elif isinstance(item, np.ndarray):
                    item = Image.fromarray(item)
            except ImageRejected as exc:
                failures[i] = f"{exc.code}: {exc.message}"
                continue
            images.append(item)
            rows.append(i)
        out = np.zeros((len(inputs), self.dimension), dtype=np.float32)
        if images:
            out[rows] = self.embed(images)
        return out, failures


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
