"""Reindex: embed every live reference with a model into a new index generation, then swap.

1. Load the model (unavailable weights fail the job at once; the live generation is untouched).
2. Note the change-log position, list live references, skip those that already have an embedding
   for this model's fingerprint (that is how a killed job resumes: embeddings are committed per
   shard), and embed the rest — locally (CPU worker processes decode and resize the next shard while
   the model embeds this one; on a GPU the model decodes the bytes itself, nvJPEG)
   or on Ray (service/jobs/ray_engine.py). A corrupt or missing blob is recorded as a failure.
3. Build the index (flat / IVF / IVF-PQ, chosen from the collection size and the memory budget),
   measure its recall@10 against exact search on a sample, snapshot it into a new generation.
4. Replay the change log from the noted position (registrations and deletions made during the
   build), then atomically repoint ``CURRENT``. Serving processes notice and swap.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass

import faiss
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from index.embedder import Embedder
from index.generations import Generation, Generations
from index.models import ModelIdentityError, ModelSpecError, ModelUnavailableError, parse_model_spec
from index.prepare import CpuWorkers
from index.regions import pack as pack_regions
from index.regions import reference_regions
from index.regions import unpack as unpack_regions
from index.vector_index import INDEX_TYPE_REGISTRY, INDEX_TYPES, VectorIndex
from service.core.blobs import BlobStore
from service.core.timestamps import utcnow
from service.db.models import Embedding, Reference
from service.jobs.reindex_pipeline import WorkItem, embed_locally
from service.jobs.store import JobStore
from service.serving.generation_store import GenerationStore
from service.serving.index_sync import IndexSync, latest_change_seq
from service.serving.model_options import ModelOptions
from service.settings import Settings

log = logging.getLogger(__name__)
ENGINES = ("local", "ray")
EXACT_BELOW = 50_000  # vectors: under this, exact search is fast enough and needs no training
MIN_PQ_VECTORS = INDEX_TYPE_REGISTRY["ivf-pq"].min_vectors  # PQ codebooks need this much training data


class JobCancelled(Exception):
    pass


@dataclass(frozen=True)
class ReindexParams:
    model: str
    index_type: str = "auto"
    engine: str = "local"
    ray_address: str | None = None

    def validate(self) -> "ReindexParams":
        parse_model_spec(self.model)  # a malformed spec is refused now, not as a failed job later
        if self.index_type not in ("auto", *INDEX_TYPES):
            raise ValueError(f"index type {self.index_type!r} is not one of auto, {', '.join(INDEX_TYPES)}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        return self


HNSW_BYTES_PER_VECTOR_OVERHEAD = (
    2 * 32 * 4 + 64
)  # the graph's links at M = 32 (level 0 has 2M), plus bookkeeping


def choose_index_type(count: int, dimension: int, memory_gb: float) -> str:
    """Exact while small; HNSW (best recall per millisecond) while its vectors and graph fit the memory
    budget; IVF-PQ (compressed) beyond it."""
    if count < EXACT_BELOW:
        return "flat"
    if count * (dimension * 4 + HNSW_BYTES_PER_VECTOR_OVERHEAD) <= memory_gb * 1e9:
        return "hnsw"
    return "ivf-pq" if count >= MIN_PQ_VECTORS else "ivf"


def measure_recall(
    index: VectorIndex, vectors: np.ndarray, ids: np.ndarray, sample: int = 200, k: int = 10
) -> float:
    """recall@k of ``index`` against exact inner-product search, on up to ``sample`` stored vectors as queries."""
    if len(vectors) == 0:
        return 1.0
    picks = np.random.default_rng(0).choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    queries = vectors[picks]
    k = min(k, len(vectors))
    _, exact = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(queries, k)
    exact_ids = ids[exact]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact_ids)]))


class ShardCheckpoint:
    """Commits each embedded shard in one transaction (the point a killed job resumes from) and reports the job's
    progress; raises :class:`JobCancelled` once a cancel was requested."""

    def __init__(self, sessions, jobs: JobStore, job_id: str, fingerprint: str, preset: str, done: int):
        self.sessions, self.jobs, self.job_id = sessions, jobs, job_id
        self.fingerprint, self.preset = fingerprint, preset
        self.done, self.embedded, self.failures = done, 0, []
        self.started = time.monotonic()

    def __call__(self, ids: list[int], vectors: np.ndarray, failures: list[dict]) -> None:
        """``vectors``: references × regions × dimension (the whole image's first)."""
        with self.sessions() as session:
            for rid, vecs in zip(ids, vectors):
                session.merge(
                    Embedding(
                        reference_id=rid,
                        fingerprint=self.fingerprint,
                        vector=vecs[0].astype(np.float32).tobytes(),
                        regions=pack_regions(vecs[1:]),
                        region_preset=self.preset,
                    )
                )
            session.commit()
        self.embedded += len(ids)
        self.done += len(ids) + len(failures)
        self.failures += failures
        rate = self.embedded / max(time.monotonic() - self.started, 1e-9)
        self.jobs.update(
            self.job_id,
            done=self.done,
            embedded=self.embedded,
            failures=self.failures,
            images_per_second=round(rate, 2),
        )
        if self.jobs.cancel_requested(self.job_id):
            raise JobCancelled()


class Reindexer:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], blobs: BlobStore, jobs: JobStore):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.jobs = jobs
        self.generations = Generations(settings.index_dir)

    def run(self, job_id: str, params: ReindexParams) -> None:
        """Run a created job to its end state; never raises (the job row says what happened)."""
        started = time.monotonic()
        self.jobs.update(job_id, state="running", started_at=utcnow())
        try:
            result = self._reindex(job_id, params.validate(), started)
        except JobCancelled:
            self.jobs.update(job_id, state="cancelled", finished_at=utcnow())
        except (ModelSpecError, ModelUnavailableError, ModelIdentityError, ValueError) as exc:
            self.jobs.update(job_id, state="failed", error=str(exc), finished_at=utcnow())
        except Exception as exc:  # the job must end in a state, whatever went wrong
            log.exception("Reindex job %s failed", job_id)
            self.jobs.update(
                job_id, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=utcnow()
            )
        else:
            self.jobs.update(job_id, state="succeeded", result=result, finished_at=utcnow())

    def _reindex(self, job_id: str, params: ReindexParams, started: float) -> dict:
        options = ModelOptions.from_settings(self.settings)
        embedder = options.load(params.model)
        fingerprint = embedder.info.fingerprint()
        limits = options.limits(embedder)
        preset = self.settings.reference_regions
        regions = reference_regions(preset)
        start_seq = latest_change_seq(self.sessions)
        live, todo = self._work(fingerprint, preset)
        self.jobs.update(job_id, total=live, done=live - len(todo))
        workers = None
        if (
            params.engine == "local" and todo
        ):  # started (spawned) before the clock: the rate is the embed phase's
            workers = CpuWorkers(self.settings.resolved_cpu_workers, self.settings.decode_threads)
            workers.call(len, b"")
        write_shard = ShardCheckpoint(self.sessions, self.jobs, job_id, fingerprint, preset, live - len(todo))
        if params.engine == "ray":
            from service.jobs.ray_engine import embed_with_ray

            embed_with_ray(
                todo, params.model, self.settings, self.blobs, write_shard, params.ray_address, regions
            )
        elif workers is not None:
            try:
                embed_locally(
                    todo,
                    embedder,
                    self.blobs,
                    write_shard,
                    self.settings.reindex_shard_size,
                    workers,
                    options.batch_size,
                    regions,
                )
            finally:
                workers.shutdown()

        generation, index_type, recall, size = self._build_generation(embedder, params, start_seq)
        sync = self._activate(generation, embedder, limits, preset)
        return {
            "generation": generation.number,
            "fingerprint": fingerprint,
            "model": params.model,
            "index_type": index_type,
            "recall_at_10": round(recall, 4),
            "size": len(sync.index),
            "vectors": sync.index.vector_count,
            "start_change_seq": start_seq,
            "seconds": round(time.monotonic() - started, 2),
            "failed": len(write_shard.failures),
        }

    def _work(self, fingerprint: str, preset: str) -> tuple[int, list[WorkItem]]:
        """How many references are live, and those without an embedding for this model and region preset (a
        killed job resumes here; rows embedded with other reference regions are embedded again)."""
        with self.sessions() as session:
            live = session.execute(
                select(Reference.id, Reference.sha256)
                .where(Reference.deleted_at.is_(None))
                .order_by(Reference.id)
            ).all()
            embedded = set(
                session.scalars(
                    select(Embedding.reference_id).where(
                        Embedding.fingerprint == fingerprint,
                        func.coalesce(Embedding.region_preset, "whole") == preset,
                    )
                )
            )
        return len(live), [WorkItem(rid, sha) for rid, sha in live if rid not in embedded]

    def _activate(self, generation: Generation, embedder: Embedder, limits, preset: str) -> IndexSync:
        """Catch the new generation up with the changes made during the build, make it current, tell every replica."""
        sync = IndexSync(
            self.sessions,
            self.generations,
            embedder.info,
            self.blobs,
            embedder.embed,
            limits,
            self.settings.snapshot_every_changes,
            reference_regions=preset,
        )
        sync.open(generation)  # replays changes made during the build, then snapshots
        sync.snapshot()
        self.generations.activate(generation)
        GenerationStore(self.sessions, self.generations, self.blobs).publish(
            generation
        )  # every replica follows
        self._prune(keep=self.settings.keep_generations, current=generation)
        return sync

    def _build_generation(
        self, embedder: Embedder, params: ReindexParams, start_seq: int
    ) -> tuple[Generation, str, float, int]:
        fingerprint = embedder.info.fingerprint()
        with self.sessions() as session:
            rows = session.execute(
                select(Embedding.reference_id, Embedding.vector, Reference.brand, Embedding.regions)
                .join(Reference, Reference.id == Embedding.reference_id)
                .where(Embedding.fingerprint == fingerprint, Reference.deleted_at.is_(None))
                .order_by(Embedding.reference_id)
            ).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (
            np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, embedder.dimension), np.float32)
        )
        brands = [r[2] for r in rows]
        regions = [unpack_regions(r[3], embedder.dimension) for r in rows]
        index_type = params.index_type
        if index_type == "auto":
            total = len(ids) + sum(len(r) for r in regions if r is not None)  # region vectors take memory too
            index_type = choose_index_type(total, embedder.dimension, self.settings.index_memory_gb)
        if index_type == "ivf-pq" and len(ids) < MIN_PQ_VECTORS:
            raise ValueError(
                f"ivf-pq needs at least {MIN_PQ_VECTORS} vectors to train; this collection has {len(ids)}"
            )
        if index_type != "flat" and len(ids) < 2:
            index_type = "flat"
        index = VectorIndex.build(ids, vectors, brands, index_type=index_type, regions=regions)
        recall = measure_recall(index, vectors, ids)
        pointer = GenerationStore(self.sessions, self.generations, self.blobs).pointer()
        generation = self.generations.create(embedder.info.as_dict(), after=pointer.number if pointer else 0)
        index.save(generation.snapshot_path, {"applied_seq": start_seq, "fingerprint": fingerprint})
        return generation, index_type, recall, len(ids)

    def _prune(self, keep: int, current: Generation) -> None:
        for generation in self.generations.all()[:-keep]:
            if generation.number != current.number:
                shutil.rmtree(generation.path, ignore_errors=True)


def params_dict(params: ReindexParams) -> dict:
    return asdict(params)
