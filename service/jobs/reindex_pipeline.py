"""The reindex pipeline's shared worker: prepare reference images for a model and embed them, one shard at a time.

The local engine (:func:`embed_locally`: CPU worker processes prepare the next images while the model embeds this
batch) and the Ray engine (service/jobs/ray_engine.py: one actor per model) both call :func:`prepare_references`
and :func:`embed_prepared`, so the two produce the same vectors (clip-retrieval's reader → mapper → writer).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from index.embedder import Embedder
from index.prepare import CpuWorkers, Prepared, PrepareSpec, prepare_file
from index.regions import WHOLE, Region, draft_for_regions
from service.core.blobs import BlobStore


@dataclass(frozen=True)
class WorkItem:
    reference_id: int
    sha256: str


def shards(items: Sequence[WorkItem], size: int) -> Iterator[Sequence[WorkItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


ShardWriter = Callable[[list[int], np.ndarray, list[dict]], None]


def reindex_spec(embedder: Embedder, regions: tuple[Region, ...] = (WHOLE,)) -> PrepareSpec:
    """Reference images for the model: its pixels and its regions' (no PDQ: registration stored it), or nothing
    when it decodes bytes on its device — unless regions are wanted: the CPU workers cut those. Decoded only as
    large as the model and the regions need (no PDQ here, so not the ≥ 512 px uploads are decoded to)."""
    return PrepareSpec(
        draft_size=draft_for_regions(embedder.draft_size, regions),
        pixels=embedder.pixel_config,
        want_model_input=not embedder.decodes_on_device or len(regions) > 1,
        want_pdq=False,
        regions=regions,
    )


def prepare_references(
    paths: Sequence[str], embedder: Embedder, spec: PrepareSpec
) -> tuple[list, list[str | None]]:
    """Per path its model inputs (pixels, decoded images or the bytes themselves; the whole image first, then
    each region's) and the failure, if any."""
    if not spec.want_model_input:
        inputs: list = []
        for path in paths:
            try:
                inputs.append(Path(path).read_bytes())
            except FileNotFoundError:
                inputs.append(None)
        return (
            [[data] for data in inputs],
            [
                None if data is not None else "missing_blob: the image file is not in the blob store"
                for data in inputs
            ],
        )
    prepared = [prepare_file(path, spec) for path in paths]
    return [p.model_inputs for p in prepared], [
        f"{p.rejected[0]}: {p.rejected[1]}" if p.rejected else None for p in prepared
    ]


def embed_prepared(
    embedder: Embedder,
    ids: Sequence[int],
    inputs: Sequence[Sequence],
    errors: Sequence[str | None],
    regions: int = 1,
) -> tuple[list[int], np.ndarray, list[dict]]:
    """One model pass over a shard's inputs (``regions`` per reference: the whole image's, then its regions'):
    ``(embedded ids, their vectors — references × regions × dimension, failures)``."""
    rows = [i for i, error in enumerate(errors) if error is None]
    flat = [item for i in rows for item in inputs[i]]
    vectors, failed = (
        embedder.embed_inputs(flat) if rows else (np.zeros((0, embedder.dimension), np.float32), {})
    )
    failures = [
        {"reference_id": int(ids[i]), "reason": error} for i, error in enumerate(errors) if error is not None
    ]
    failed_rows = {
        position // regions: reason for position, reason in failed.items()
    }  # any of its regions fails it
    failures += [{"reference_id": int(ids[rows[j]]), "reason": reason} for j, reason in failed_rows.items()]
    keep = [j for j in range(len(rows)) if j not in failed_rows]
    grouped = (
        vectors.reshape(len(rows), regions, -1)
        if rows
        else np.zeros((0, regions, embedder.dimension), np.float32)
    )
    return [int(ids[rows[j]]) for j in keep], grouped[keep], failures


def collect(futures: list[Future]) -> tuple[list, list[str | None]]:
    """Each future's model inputs and failure (a worker that died fails its image alone)."""
    inputs, errors = [], []
    for future in futures:
        try:
            result = future.result()
        except Exception as exc:  # a worker died on this image (BrokenProcessPool): it fails alone
            inputs.append(None)
            errors.append(f"worker_failed: {type(exc).__name__}")
            continue
        if isinstance(result, Prepared):
            inputs.append(result.model_inputs)
            errors.append(f"{result.rejected[0]}: {result.rejected[1]}" if result.rejected else None)
        else:  # prepare_references of one path
            inputs.append(result[0][0])
            errors.append(result[1][0])
    return inputs, errors


class _Window:
    """A sliding window of submitted preparation: while the model embeds one batch, the workers prepare the next
    ones (within a shard and across shards), so neither side waits for a whole shard."""

    def __init__(
        self, items: Sequence[WorkItem], start: Callable[[Sequence[WorkItem]], list[Future]], size: int
    ):
        self.items, self.start, self.size = list(items), start, size
        self.queue: list[Future] = []
        self.submitted = 0
        self._top_up()

    def take(self, count: int) -> list[Future]:
        taken = [self.queue.pop(0) for _ in range(count)]
        self._top_up()
        return taken

    def _top_up(self) -> None:
        want = min(len(self.items), self.submitted + self.size)
        if want > self.submitted:
            self.queue.extend(self.start(self.items[self.submitted : want]))
            self.submitted = want


def embed_locally(
    items: Sequence[WorkItem],
    embedder: Embedder,
    blobs: BlobStore,
    write_shard: ShardWriter,
    shard_size: int,
    workers: CpuWorkers,
    model_batch: int = 32,
    regions: tuple[Region, ...] = (WHOLE,),
) -> None:
    """The service's pipeline: CPU workers decode, resize and cut the regions of the next images (or the
    device decodes them) while the model embeds this batch; each shard is committed as one checkpoint."""
    spec = reindex_spec(embedder, regions)
    # On a device that decodes JPEGs itself, the CPU only reads files (threads); otherwise workers decode and resize.
    readers = ThreadPoolExecutor(4, thread_name_prefix="reindex-read") if not spec.want_model_input else None

    def start(batch: Sequence[WorkItem]) -> list[Future]:
        paths = [str(blobs.path_for(item.sha256)) for item in batch]
        if readers is not None:
            return [readers.submit(prepare_references, [path], embedder, spec) for path in paths]
        return [workers.submit(prepare_file, path, spec) for path in paths]

    try:
        window = _Window(items, start, max(2 * model_batch, 4 * workers.size))
        for batch in shards(items, shard_size):
            ids: list[int] = []
            vectors = [np.zeros((0, len(spec.regions), embedder.dimension), np.float32)]
            failures: list[dict] = []
            for begin in range(0, len(batch), model_batch):
                chunk = batch[begin : begin + model_batch]
                inputs, errors = collect(window.take(len(chunk)))
                done, chunk_vectors, chunk_failures = embed_prepared(
                    embedder, [item.reference_id for item in chunk], inputs, errors, len(spec.regions)
                )
                ids += done
                vectors.append(chunk_vectors)
                failures += chunk_failures
            write_shard(ids, np.concatenate(vectors), failures)
    finally:
        if readers is not None:
            readers.shutdown(cancel_futures=True)
