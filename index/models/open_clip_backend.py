"""open_clip image towers: pretrained tags, local checkpoints, and random-weight test/benchmark models."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from index.embedder import EmbedderInfo
from index.models.errors import ModelUnavailableError
from index.models.spec import RANDOM_WEIGHTS, TEST_ARCHITECTURES, ModelSpec
from index.models.torch_embedder import TorchImageEmbedder
from index.models.weights import file_sha256
from index.preprocess import PreprocessConfig

log = logging.getLogger(__name__)
_CONFIG_DIR = Path(__file__).parent / "configs"
RANDOM_SEED = 0


def fast_config_from_open_clip(cfg: dict) -> PreprocessConfig | None:
    size = cfg["size"]
    size = size if isinstance(size, int) else (size[0] if size[0] == size[1] else None)
    if (
        size is None
        or cfg.get("resize_mode", "shortest") != "shortest"
        or cfg.get("interpolation", "bicubic") != "bicubic"
    ):
        return None
    return PreprocessConfig(resize_to=size, crop=size, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))


def random_weights_sha256(model_config: dict) -> str:
    """Seeded random weights are named by what makes them (seed, architecture), not by their bytes: torch's
    vectorised init kernels round differently per CPU instruction set (AVX-512 vs the default kernels give
    other last bits), so the bytes would give every CPU kind another model identity. The probe check
    (index.models.artefacts) verifies that this process's weights compute the stored embedding space."""
    canonical = json.dumps(
        {"init": "torch.manual_seed", "seed": RANDOM_SEED, "config": model_config}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class OpenClipEmbedder(TorchImageEmbedder):
    def __init__(
        self,
        spec: ModelSpec,
        device: str = "cpu",
        cache_dir: str | None = None,
        batch_size: int = 32,
        **options,
    ):
        import open_clip  # heavy import, only when this backend is used

        super().__init__(device, batch_size, **options)
        self.weights_file: Path | None = None
        if spec.is_test_model or spec.weights == RANDOM_WEIGHTS:
            name = TEST_ARCHITECTURES.get(spec.architecture, spec.architecture)
            if spec.is_test_model:
                open_clip.add_model_config(_CONFIG_DIR / f"{name}.json")
            torch.manual_seed(
                RANDOM_SEED
            )  # same random weights in every process (to the last bits on one CPU kind)
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
            weights_kind, weights_sha = (
                "random (TEST ONLY)",
                random_weights_sha256(open_clip.get_model_config(name)),
            )
            log.warning(
                "Model %s has RANDOM weights: for tests and benchmarks only, its verdicts mean nothing.", spec
            )
        else:
            model, preprocess, weights_kind, weights_sha = self._load_weights(open_clip, spec, cache_dir)
        self.model = model.visual  # the image tower is all we run
        self.reference_transform = preprocess
        cfg = dict(model.visual.preprocess_cfg)
        self.fast_config = fast_config_from_open_clip(cfg)
        self._info = EmbedderInfo(
            spec=str(spec),
            dimension=int(model.visual.output_dim),
            weights_kind=weights_kind,
            weights_sha256=weights_sha,
            preprocessing={k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        )
        self._finish_setup()

    def _load_weights(self, open_clip, spec: ModelSpec, cache_dir: str | None):
        assert spec.weights is not None
        if spec.weights_is_path:
            path = Path(spec.weights).expanduser()
            if not path.is_file():
                raise ModelUnavailableError(str(spec), f"local checkpoint file {path}", "file does not exist")
            tried, kind = f"local checkpoint file {path}", "checkpoint"
        else:
            tried = f"open_clip pretrained tag {spec.weights!r} (download, or the cache in {cache_dir or 'the default HF hub cache'})"
            kind = "pretrained"
            path = self._download(open_clip, spec, cache_dir, tried)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.architecture, pretrained=spec.weights, cache_dir=cache_dir
            )
        except Exception as exc:
            raise ModelUnavailableError(str(spec), tried, f"{type(exc).__name__}: {exc}") from exc
        self.weights_file = path
        return model, preprocess, kind, file_sha256(path)

    @staticmethod
    def _download(open_clip, spec: ModelSpec, cache_dir: str | None, tried: str) -> Path:
        """The weights file for a pretrained tag: from the cache, else downloaded (with progress)."""
        from open_clip.pretrained import download_pretrained, get_pretrained_cfg

        cfg = get_pretrained_cfg(spec.architecture, spec.weights)
        if not cfg:
            known = (
                ", ".join(tag for arch, tag in open_clip.list_pretrained() if arch == spec.architecture)
                or "none"
            )
            raise ModelUnavailableError(
                str(spec), tried, f"unknown pretrained tag; tags for {spec.architecture}: {known}"
            )
        try:
            return Path(download_pretrained(cfg, cache_dir=cache_dir))
        except Exception as exc:
            raise ModelUnavailableError(str(spec), tried, f"{type(exc).__name__}: {exc}") from exc

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch)
