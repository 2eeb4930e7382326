"""Reindex jobs: a new generation built beside the live one, swapped atomically, resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from functools import lru_cache

import numpy as np
import pytest

from index.generations import Generations
from index.models import load_embedder
from index.prepare import prepare
from index.regions import reference_regions
from index.synthetic import synthetic_image
from service.db.models import Role
from service.jobs.reindex_pipeline import reindex_spec
from tests.helpers import (
    ThreadedServer,
    cli_env,
    create_api_key,
    make_settings,
    png_bytes,
    product_photo,
    sql,
)
from tests.service.cli.test_cli import run_cli

OTHER_MODEL = "open_clip:tiny-random-b"


@lru_cache(maxsize=None)
def large_photo(seed: int) -> bytes:
    """Big PNGs (no JPEG draft shortcut) so a reindex takes long enough to act during it."""
    return png_bytes(synthetic_image(seed, size=(1400, 1400)))


def _register(client, seed: int, data: bytes | None = None, label: str = "counterfeit"):
    response = client.post(
        "/v1/references",
        files={"image": ("r.png", data or large_photo(seed), "image/png")},
        data={"brand": "acme", "label": label},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _wait_job(client, job_id: str, until, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job never reached the expected state: {job}")


def _top(client, data: bytes) -> dict:
    response = client.post("/v1/check", files={"image": ("q.png", data, "image/png")}, data={"k": "3"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def slow_reindex_server(tmp_path, keys_for):
    settings = make_settings(tmp_path / "data", reindex_shard_size=2, decode_threads=1)
    keys = keys_for(settings)
    server = ThreadedServer(settings).start()
    yield server, keys, settings
    server.stop()


def test_reindex_to_another_model_while_serving(slow_reindex_server):
    server, keys, settings = slow_reindex_server
    with server.client(keys.admin) as admin:
        ids = {seed: _register(admin, seed) for seed in range(40)}
        old_fingerprint = admin.get("/v1/info").json()["model"]["fingerprint"]
        check_errors, checks_done, stop = [], [0], threading.Event()

        def keep_checking():  # checks must keep succeeding before, during and after the swap
            with server.client(keys.platform) as platform:
                while not stop.is_set():
                    response = platform.post(
                        "/v1/check", files={"image": ("q.png", product_photo(3), "image/png")}
                    )
                    checks_done[0] += 1
                    if response.status_code != 200:
                        check_errors.append(response.text)

        checker = threading.Thread(target=keep_checking)
        checker.start()
        job_id = admin.post("/v1/reindex", json={"model": OTHER_MODEL}).json()["job_id"]
        _wait_job(admin, job_id, lambda j: j["state"] == "running" and j["done"] >= 4)
        second = admin.post("/v1/reindex", json={"model": OTHER_MODEL})
        assert second.status_code == 409 and second.json()["error"]["code"] == "job_running"
        added = _register(admin, 1000)
        admin.delete(f"/v1/references/{ids[5]}")
        during = admin.get(f"/v1/jobs/{job_id}").json()
        assert during["state"] == "running", "the job ended before the changes: they were not made during it"
        assert during["total"] == 40 and during["eta_seconds"] is not None
        assert (
            admin.get("/v1/info").json()["model"]["fingerprint"] == old_fingerprint
        )  # still the old generation

        job = _wait_job(admin, job_id, lambda j: j["state"] not in ("queued", "running"))
        assert job["state"] == "succeeded", job
        deadline = time.monotonic() + 30
        while admin.get("/v1/info").json()["model"]["spec"] != OTHER_MODEL and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        checker.join()
        info = admin.get("/v1/info").json()
        assert info["model"]["spec"] == OTHER_MODEL and info["model"]["dimension"] == 48
        assert info["model"]["fingerprint"] == job["result"]["fingerprint"] != old_fingerprint
        assert info["index"]["generation"] == job["result"]["generation"] == 2
        assert info["index"]["size"] == 40  # 40 - 1 deleted + 1 added during the build
        assert not check_errors and checks_done[0] > 3
        assert _top(admin, large_photo(1000))["evidence"][0]["reference_id"] == added
        assert ids[5] not in [e["reference_id"] for e in _top(admin, large_photo(5))["evidence"]]
        assert _top(admin, large_photo(7))["evidence"][0]["reference_id"] == ids[7]

    # Roll back: the running service returns to the previous generation and its model.
    assert run_cli(settings, "index", "rollback").returncode == 0
    with server.client(keys.admin) as admin:
        deadline = time.monotonic() + 30
        while (
            admin.get("/v1/info").json()["model"]["fingerprint"] != old_fingerprint
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        info = admin.get("/v1/info").json()
        assert info["model"]["fingerprint"] == old_fingerprint and info["index"]["generation"] == 1
        assert info["index"]["size"] == 40  # the changes made since were replayed into generation 1 too
        assert _top(admin, large_photo(1000))["evidence"][0]["reference_id"] == added


def test_cancel_unavailable_model_and_corrupt_blobs(server, keys, admin, settings):
    ids = {seed: _register(admin, seed, product_photo(seed)) for seed in range(12)}
    generations = Generations(settings.index_dir)

    failed = admin.post(
        "/v1/reindex", json={"model": "timm:efficientnet_lite0@/nonexistent/weights.pth"}
    ).json()
    job = _wait_job(admin, failed["job_id"], lambda j: j["state"] not in ("queued", "running"))
    assert job["state"] == "failed" and "are unavailable" in job["error"] and "weights.pth" in job["error"]
    assert generations.current().number == 1 and len(generations.all()) == 1

    bad = admin.post("/v1/reindex", json={"index_type": "annoy"})
    assert bad.status_code == 422 and "is not one of" in bad.json()["error"]["message"]
    assert generations.current().number == 1

    blob_dir = settings.blob_dir
    references = {r["id"]: r for r in admin.get("/v1/references").json()["items"]}
    corrupt, missing = ids[2], ids[3]
    path = lambda digest: blob_dir / digest[:2] / digest[2:4] / digest  # noqa: E731
    path(references[corrupt]["sha256"]).write_bytes(b"garbage instead of a png")
    path(references[missing]["sha256"]).unlink()
    job_id = admin.post("/v1/reindex", json={"model": OTHER_MODEL, "index_type": "ivf"}).json()["job_id"]
    job = _wait_job(admin, job_id, lambda j: j["state"] not in ("queued", "running"))
    assert job["state"] == "succeeded", job
    reasons = {f["reference_id"]: f["reason"] for f in job["failures"]}
    assert reasons.keys() == {corrupt, missing}
    assert reasons[missing].startswith("missing_blob") and reasons[corrupt].startswith("not_an_image")
    assert (
        job["result"]["index_type"] == "ivf" and job["result"]["size"] == 10 and job["result"]["failed"] == 2
    )
    assert 0 <= job["result"]["recall_at_10"] <= 1


def test_cancelled_job_swaps_nothing(slow_reindex_server):
    server, keys, settings = slow_reindex_server
    with server.client(keys.admin) as admin:
        for seed in range(16):
            _register(admin, seed)
        job_id = admin.post("/v1/reindex", json={"model": OTHER_MODEL}).json()["job_id"]
        _wait_job(admin, job_id, lambda j: j["done"] >= 2)
        assert admin.post(f"/v1/jobs/{job_id}/cancel").json()["cancel_requested"] is True
        job = _wait_job(admin, job_id, lambda j: j["state"] not in ("queued", "running"))
        assert job["state"] == "cancelled" and job["done"] < 16
        assert Generations(settings.index_dir).current().number == 1
        assert (
            admin.post("/v1/reindex", json={"model": OTHER_MODEL}).status_code == 202
        )  # not blocked any more


def _job_progress(settings) -> int:
    rows = sql(settings, "SELECT done FROM jobs ORDER BY created_at DESC LIMIT 1")
    return rows[0][0] if rows else 0


@pytest.mark.slow  # starts and kills a server process
def test_killed_reindex_resumes_and_equals_a_clean_run(tmp_path):
    settings = make_settings(tmp_path / "data", reindex_shard_size=2, decode_threads=1)
    create_api_key(settings, Role.admin)
    server = ThreadedServer(settings).start()
    with server.client(create_api_key(settings, Role.admin)) as admin:
        ids = [_register(admin, seed) for seed in range(30)]
    server.stop()

    env = cli_env(settings, COUNTERFEIT_REINDEX_SHARD_SIZE="2", COUNTERFEIT_DECODE_THREADS="1")
    command = [sys.executable, "-m", "service", "reindex", "--model", OTHER_MODEL]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _job_progress(settings) < 6 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert Generations(settings.index_dir).current().number == 1  # nothing partial swapped in

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    [(embedded_second_time, total)] = sql(
        settings, "SELECT embedded, total FROM jobs WHERE state = 'succeeded'"
    )
    stored = dict(
        sql(
            settings,
            "SELECT reference_id, vector FROM embeddings WHERE fingerprint = :f",
            f=result["fingerprint"],
        )
    )
    assert total == 30 and 0 < embedded_second_time < 30
    assert result["size"] == 30 and Generations(settings.index_dir).current().number == result["generation"]

    # A clean run = every reference prepared (decoded at the size its regions need) and embedded from scratch
    # by the new model.
    model = load_embedder(OTHER_MODEL)
    spec = reindex_spec(model, reference_regions(settings.reference_regions))
    clean, _ = model.embed_inputs([prepare(large_photo(seed), spec).model_inputs[0] for seed in range(30)])
    resumed_vectors = np.stack([np.frombuffer(stored[rid], dtype=np.float32) for rid in ids])
    assert np.allclose(resumed_vectors, clean, atol=1e-5)


def test_service_keeps_serving_when_the_new_generations_model_cannot_load(
    server, keys, admin, settings, caplog
):
    """A replica without the new model's weights stays on the old generation and does not retry every poll."""
    import json as json_module

    _register(admin, 1, product_photo(1))
    generations = Generations(settings.index_dir)
    broken = generations.create(
        {
            **generations.current().model_info(),
            "spec": "timm:efficientnet_lite0@/missing.pth",
            "fingerprint": "0000000000000000",
        }
    )
    assert json_module.loads(broken.fingerprint_path.read_text())["spec"].endswith("missing.pth")
    generations.activate(broken)
    from service.core.blobs import BlobStore
    from service.db.session import make_engine, make_session_factory
    from service.serving.generation_store import GenerationStore

    engine = make_engine(settings.resolved_database_url)
    GenerationStore(make_session_factory(engine), generations, BlobStore(settings.blob_dir)).publish(
        broken
    )  # as a reindex does
    engine.dispose()
    time.sleep(1.0)  # several tailer polls
    with server.client(keys.platform) as platform:
        result = platform.post("/v1/check", files={"image": ("q.png", product_photo(1), "image/png")}).json()
    assert result["evidence"][0]["similarity"] > 0.99
    assert admin.get("/v1/info").json()["index"]["generation"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert (
        sum("Cannot switch to index generation" in m for m in messages) == 1
    )  # one model load, then back-off
    assert not any("Applying the change log failed" in m for m in messages)  # tailing went on undisturbed


def test_hnsw_generation_deletes_by_tombstone_and_is_compacted_into_a_new_generation(
    server, keys, admin, settings
):
    """Reindex into HNSW (same model: stored embeddings, nothing re-embedded), delete a third of the
    references: they are never evidence again, and the lease holder compacts into a new generation."""
    ids = {seed: _register(admin, seed, product_photo(seed)) for seed in range(30)}
    generations = Generations(settings.index_dir)
    job_id = admin.post("/v1/reindex", json={"index_type": "hnsw"}).json()["job_id"]
    job = _wait_job(admin, job_id, lambda j: j["state"] not in ("queued", "running"))
    assert job["state"] == "succeeded" and job["result"]["index_type"] == "hnsw", job
    assert job["embedded_this_run"] == 0  # the model's embeddings were already stored
    deadline = time.monotonic() + 30
    while admin.get("/v1/info").json()["index"]["type"] != "hnsw" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert admin.get("/v1/info").json()["index"] == {
        **admin.get("/v1/info").json()["index"],
        "type": "hnsw",
        "size": 30,
    }
    hnsw_generation = generations.current().number

    deleted = [ids[seed] for seed in range(10)]
    for reference_id in deleted:
        assert admin.delete(f"/v1/references/{reference_id}").status_code in (200, 204)
    for seed in range(10):  # a deleted reference never comes back as evidence
        assert not {e["reference_id"] for e in _top(admin, product_photo(seed))["evidence"]} & set(deleted)
    assert _top(admin, product_photo(12))["evidence"][0]["reference_id"] == ids[12]

    # 10 of 30 labels are tombstones (> 20 %): the maintenance lease holder rebuilds the graph.
    deadline = time.monotonic() + 120
    while generations.current().number == hnsw_generation and time.monotonic() < deadline:
        time.sleep(0.2)
    assert generations.current().number > hnsw_generation, "no compaction generation appeared"
    deadline = time.monotonic() + 30
    while (
        admin.get("/v1/info").json()["index"]["generation"] != generations.current().number
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    info = admin.get("/v1/info").json()["index"]
    assert info["type"] == "hnsw" and info["size"] == 20
    assert _top(admin, product_photo(12))["evidence"][0]["reference_id"] == ids[12]
    assert not {e["reference_id"] for e in _top(admin, product_photo(3))["evidence"]} & set(deleted)
