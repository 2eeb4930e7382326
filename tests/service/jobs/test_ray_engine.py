"""The Ray engine (a local Ray instance, as CI runs it) embeds exactly like the local engine."""

from __future__ import annotations

import numpy as np
import pytest

from service.db.models import Label
from service.jobs.reindex import Reindexer, ReindexParams, params_dict
from service.jobs.store import JobStore
from service.references.registry import NewReference
from service.runtime import Runtime
from tests.helpers import make_settings, product_photo, sql

ray = pytest.importorskip("ray", reason="the Ray engine is an optional extra: pip install -e '.[ray]'")
OTHER_MODEL = "open_clip:tiny-random-b"


def _reindex(tmp_path, name: str, engine: str) -> dict[str, np.ndarray]:
    settings = make_settings(tmp_path / name, reindex_shard_size=3)
    runtime = Runtime(settings)
    for seed in range(10):
        runtime.registry.register(NewReference(brand="acme", label=Label.counterfeit), product_photo(seed))
    runtime.close()  # a reindex runs beside (or without) the service; it needs only the database and blobs
    jobs = JobStore(runtime.sessions)
    params = ReindexParams(OTHER_MODEL, engine=engine)
    job = jobs.create("reindex", params_dict(params))
    Reindexer(settings, runtime.sessions, runtime.blobs, jobs).run(job.id, params)
    finished = jobs.get(job.id)
    assert finished.state == "succeeded", finished.error
    rows = sql(
        settings,
        "SELECT r.sha256, e.vector FROM embeddings e JOIN reference_images r ON r.id = e.reference_id "
        "WHERE e.fingerprint = :f",
        f=finished.result["fingerprint"],
    )
    return {sha: np.frombuffer(vector, dtype=np.float32) for sha, vector in rows}


def test_ray_engine_matches_local_engine(tmp_path):
    try:
        local = _reindex(tmp_path, "local", "local")
        distributed = _reindex(tmp_path, "ray", "ray")
    finally:
        ray.shutdown()
    assert local.keys() == distributed.keys() and len(local) == 10
    for sha, vector in local.items():
        assert np.allclose(vector, distributed[sha], atol=1e-5)
