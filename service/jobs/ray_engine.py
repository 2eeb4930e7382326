"""Reindex embedding on Ray: Ray Data ``map_batches`` over an actor pool, one model per actor.

The driver lists the work, Ray actors read blobs straight from the blob store (a path every worker
can reach: local disk for a one-machine cluster, a shared volume for a real one), decode and embed
them, and the driver writes each returned batch as a committed shard — the same checkpoints the
local engine writes, so a killed Ray job resumes the same way. GPU actors are used when the
cluster has GPUs.

Against an existing cluster: ``counterfeit reindex --engine ray --ray-address ray://head:10001``
(or set ``RAY_ADDRESS``); without an address a local Ray instance is started in-process.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from service.core.blobs import BlobStore
from service.serving.model_options import ModelOptions
from service.settings import Settings

log = logging.getLogger(__name__)


class EmbedActor:
    """Lives in a Ray worker: loads the model once, embeds batches of blob paths."""

    def __init__(self, model: str, options, regions: tuple = ()):
        # The same adapter as the service: COUNTERFEIT_MODEL_CACHE travels with it.
        from index.regions import WHOLE
        from service.jobs.reindex_pipeline import reindex_spec

        self.embedder = options.load(model)
        self.spec = reindex_spec(self.embedder, tuple(regions) or (WHOLE,))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # The local engine's pipeline, in the actor: worker-style decode + resize (or bytes for a
        # GPU actor, decoded by nvJPEG), one model pass per batch.
        from service.jobs.reindex_pipeline import embed_prepared, prepare_references

        ids = [int(i) for i in batch["id"]]
        inputs, errors = prepare_references([str(p) for p in batch["path"]], self.embedder, self.spec)
        done, vectors, failures = embed_prepared(self.embedder, ids, inputs, errors, len(self.spec.regions))
        out = np.zeros((len(ids), len(self.spec.regions), self.embedder.dimension), dtype=np.float32)
        reasons = {f["reference_id"]: f["reason"] for f in failures}
        position = {rid: i for i, rid in enumerate(ids)}
        for rid, vector in zip(done, vectors):
            out[position[rid]] = vector
        errors_out = np.array([reasons.get(rid, "") for rid in ids], dtype=object)
        return {"id": batch["id"], "vector": out, "error": errors_out}


def connect(address: str | None) -> tuple[int, int]:
    """Join (or start) the Ray cluster; (its GPUs, CPUs per actor when there are none)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    # CPU-only: one actor per node-sized slot, so PyTorch inside it may use those cores (Ray sets
    # OMP_NUM_THREADS from the actor's num_cpus).
    return gpus, max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, len(ray.nodes())))


def embed_with_ray(
    items: Sequence,
    model: str,
    settings: Settings,
    blobs: BlobStore,
    write_shard,
    address: str | None = None,
    regions: tuple = (),
) -> None:
    """``write_shard(ids, vectors — references × regions × dimension, failures)``, as the local engine calls it."""
    import ray

    if not items:
        return
    gpus, cpus_per_actor = connect(address)
    dataset = ray.data.from_items(
        [{"id": item.reference_id, "path": str(blobs.path_for(item.sha256).resolve())} for item in items]
    )
    embedded = dataset.map_batches(
        EmbedActor,
        fn_constructor_kwargs={
            "model": model,
            "regions": tuple(regions),
            "options": ModelOptions.from_settings(settings, device="cuda" if gpus else "cpu"),
        },
        batch_size=settings.reindex_shard_size,
        concurrency=max(1, gpus) if gpus else 1,
        num_gpus=1 if gpus else 0,
        num_cpus=None if gpus else cpus_per_actor,
        batch_format="numpy",
    )
    for batch in embedded.iter_batches(batch_size=settings.reindex_shard_size, batch_format="numpy"):
        ok = [i for i, error in enumerate(batch["error"]) if not error]
        failures = [
            {"reference_id": int(batch["id"][i]), "reason": str(batch["error"][i])}
            for i in range(len(batch["id"]))
            if batch["error"][i]
        ]
        write_shard([int(batch["id"][i]) for i in ok], np.asarray(batch["vector"])[ok], failures)
