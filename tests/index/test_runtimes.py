"""Inference runtimes (index/runtimes.py): ONNX Runtime's forward is exported once, verified against torch and
cached; both runtimes embed into one space (one fingerprint); what cannot run on ONNX Runtime says why."""

from __future__ import annotations

import numpy as np
import pytest

from index import runtimes
from index.models import load_embedder
from index.models.errors import ModelRuntimeError
from index.runtimes import RuntimeUnavailable, providers_for
from index.synthetic import synthetic_image
from tests.helpers import TEST_MODEL

IMAGES = [synthetic_image(seed) for seed in range(12)]


def test_onnx_and_torch_embed_into_one_space_and_the_export_is_cached(tmp_path, monkeypatch):
    torch_model = load_embedder(TEST_MODEL, device="cpu", runtime="torch", cache_dir=str(tmp_path))
    onnx_model = load_embedder(TEST_MODEL, device="cpu", runtime="onnx", cache_dir=str(tmp_path))
    assert (torch_model.runtime, onnx_model.runtime) == ("torch", "onnx")
    assert onnx_model.info.fingerprint() == torch_model.info.fingerprint()
    agreement = onnx_model.base.runtime_agreement
    assert agreement.min_cosine >= 0.9999 and agreement.max_abs_diff < 1e-3
    cosines = (torch_model.embed(IMAGES) * onnx_model.embed(IMAGES)).sum(axis=1)
    assert cosines.min() >= 0.9999
    exported = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(exported) == 1 and not list((tmp_path / "onnx").glob("*.part"))

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although a verified export is cached")

    monkeypatch.setattr(runtimes, "export_forward", no_export)
    again = load_embedder(TEST_MODEL, device="cpu", runtime="onnx", cache_dir=str(tmp_path))
    assert again.runtime == "onnx"
    np.testing.assert_allclose(again.embed(IMAGES[:2]), onnx_model.embed(IMAGES[:2]), atol=1e-6)


def test_a_model_that_does_not_export_fails_onnx_clearly_and_auto_stays_on_torch(
    tmp_path, monkeypatch, caplog
):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::made_up' is not supported")

    monkeypatch.setattr(runtimes.torch.onnx, "export", refuse)
    with pytest.raises(ModelRuntimeError) as failed:
        load_embedder(TEST_MODEL, device="cpu", runtime="onnx", cache_dir=str(tmp_path))
    assert "aten::made_up" in str(failed.value) and "COUNTERFEIT_RUNTIME=torch" in str(failed.value)
    auto = load_embedder(TEST_MODEL, device="cpu", runtime="auto", cache_dir=str(tmp_path))
    assert auto.runtime == "torch" and "serves on torch" in caplog.text
    assert not list((tmp_path / "onnx").glob("*"))  # nothing half-written is left to be picked up


def test_an_onnx_forward_that_differs_from_torch_is_refused(tmp_path, monkeypatch):
    real_call = runtimes.OnnxForward.__call__

    def drifted(self, batch):
        out = real_call(self, batch)
        return out + np.random.default_rng(0).normal(0, out.std(), out.shape).astype(np.float32)

    monkeypatch.setattr(runtimes.OnnxForward, "__call__", drifted)
    with pytest.raises(ModelRuntimeError, match="min cosine"):
        load_embedder(TEST_MODEL, device="cpu", runtime="onnx", cache_dir=str(tmp_path))


def test_execution_providers_follow_the_device():
    assert providers_for("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cuda", gpu) == gpu
    with pytest.raises(RuntimeUnavailable, match="onnxruntime-gpu"):
        providers_for("cuda:0", ["CPUExecutionProvider"])


def test_an_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="runtime must be one of"):
        load_embedder(TEST_MODEL, device="cpu", runtime="tensorflow")


def test_the_int8_variant_keeps_the_fingerprint_only_while_its_vectors_stay_in_the_space(tmp_path):
    fp32 = load_embedder(TEST_MODEL, device="cpu", runtime="torch", cache_dir=str(tmp_path))
    int8 = load_embedder(TEST_MODEL, device="cpu", runtime="onnx-int8", cache_dir=str(tmp_path))
    assert int8.runtime == "onnx-int8"
    agreement = int8.base.runtime_agreement
    assert agreement.min_cosine >= runtimes.QUANTISED_FLOOR_COSINE
    same_space = agreement.min_cosine >= runtimes.SAME_SPACE_COSINE
    assert (int8.info.fingerprint() == fp32.info.fingerprint()) == same_space
    assert ("int8" in int8.info.weights_kind) == (not same_space)
    assert len(list((tmp_path / "onnx").glob("*-int8.onnx"))) == 1


def test_a_cached_export_that_no_longer_matches_torch_is_exported_again(tmp_path):
    first = load_embedder(TEST_MODEL, device="cpu", runtime="onnx", cache_dir=str(tmp_path))
    (cached,) = (tmp_path / "onnx").glob("*.onnx")
    other = load_embedder(
        "open_clip:tiny-random-b", device="cpu", runtime="onnx", cache_dir=str(tmp_path / "b")
    )
    (stale,) = (tmp_path / "b" / "onnx").glob("*.onnx")
    cached.write_bytes(stale.read_bytes())  # another network's graph under this model's name
    again = load_embedder(TEST_MODEL, device="cpu", runtime="onnx", cache_dir=str(tmp_path))
    assert again.runtime == "onnx" and again.base.runtime_agreement.min_cosine >= 0.9999
    np.testing.assert_allclose(again.embed(IMAGES[:2]), first.embed(IMAGES[:2]), atol=1e-5)
    assert cached.read_bytes() != stale.read_bytes() and other.runtime == "onnx"


def test_auto_takes_onnx_runtime_only_where_it_is_faster():
    import time

    def slow():
        time.sleep(0.02)

    def fast():
        time.sleep(0.002)

    assert runtimes.onnx_is_faster(torch_run=slow, onnx_run=fast)
    assert not runtimes.onnx_is_faster(torch_run=fast, onnx_run=slow)
    assert not runtimes.onnx_is_faster(torch_run=fast, onnx_run=fast)  # a tie stays on torch
