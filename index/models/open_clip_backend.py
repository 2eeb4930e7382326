"""open_clip image towers: pretrained tags, local checkpoints, and the tiny random test model."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from index.embedder import Embedder, EmbedderInfo, l2_normalise
from index.models.errors import ModelUnavailableError
from index.models.spec import TEST_ARCHITECTURES, ModelSpec
from index.models.weights import file_sha256, state_dict_sha256

log = logging.getLogger(__name__)
_CONFIG_DIR = Path(__file__).parent / "configs"
TEST_MODEL_SEED = 0


class OpenClipEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, device: str = "cpu", cache_dir: str | None = None):
        import open_clip  # heavy import, only when this backend is used

        self.device = torch.device(device)
        if spec.is_test_model:
            open_clip.add_model_config(_CONFIG_DIR / f"{TEST_ARCHITECTURES[spec.architecture]}.json")
            torch.manual_seed(TEST_MODEL_SEED)  # same random weights in every process
            model, _, preprocess = open_clip.create_model_and_transforms(
                TEST_ARCHITECTURES[spec.architecture], pretrained=None, device=self.device
            )
            weights_kind, weights_sha = "random (TEST ONLY)", state_dict_sha256(model)
            log.warning("Model %s has RANDOM weights: for tests only, its verdicts mean nothing.", spec)
        else:
            model, preprocess, weights_kind, weights_sha = self._load_weights(open_clip, spec, cache_dir)
        self.model = model.eval()
        self.preprocess = preprocess
        cfg = dict(model.visual.preprocess_cfg)
        self._info = EmbedderInfo(
            spec=str(spec),
            dimension=int(model.visual.output_dim),
            weights_kind=weights_kind,
            weights_sha256=weights_sha,
            preprocessing={k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        )

    def _load_weights(self, open_clip, spec: ModelSpec, cache_dir: str | None):
        assert spec.weights is not None
        if spec.weights_is_path:
            path = Path(spec.weights).expanduser()
            if not path.is_file():
                raise ModelUnavailableError(str(spec), f"local checkpoint file {path}", "file does not exist")
            tried, kind = f"local checkpoint file {path}", "checkpoint"
        else:
            tried, kind = f"open_clip pretrained tag {spec.weights!r} (download or cache {cache_dir or 'default'})", "pretrained"
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.architecture, pretrained=spec.weights, device=self.device, cache_dir=cache_dir
            )
        except Exception as exc:
            raise ModelUnavailableError(str(spec), tried, f"{type(exc).__name__}: {exc}") from exc
        sha = file_sha256(Path(spec.weights).expanduser()) if spec.weights_is_path else state_dict_sha256(model)
        return model, preprocess, kind, sha

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        features = self.model.encode_image(batch)
        return l2_normalise(features.float().cpu().numpy())
