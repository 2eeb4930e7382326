"""Scans on Ray: actors fetch, decode, hash (PDQ) and embed the listings' photos; the driver does the rest.

Ray Data ``map_batches`` over an actor pool, one model per actor (GPU actors when the cluster has
GPUs), each with the service's own safe fetcher and CPU preprocessing (``index.prepare.prepare``).
The driver takes each batch of embedded photos and checks its listings exactly as the local engine
does — search, scoring, listing and seller records, the scan row in the listing's transaction — so
results, resumption and webhooks are the same. The actors' model must have the served model's
fingerprint (checked per photo).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from index.pdq import PdqHash
from service.checks.checker import Embedded
from service.core.blobs import BlobStore
from service.core.errors import DomainError, InvalidInput, error_of_status
from service.core.fetch import Fetched, SafeFetcher
from service.db.models import ScanItem
from service.jobs.ray_engine import connect
from service.serving.model_options import ModelOptions
from service.settings import Settings

log = logging.getLogger(__name__)
RAY_BATCH = 16  # listings per actor call


class ScanEmbedActor:
    """Lives in a Ray worker: loads the model once; per batch of listings fetches, prepares and embeds their photos."""

    def __init__(
        self,
        model: str,
        options: ModelOptions,
        max_bytes: int,
        fetch_timeout: float,
        allow_loopback: bool,
        query_regions: str = "whole",
    ):
        from index.prepare import PrepareSpec
        from index.regions import query_regions as regions_of

        self.embedder = options.load(model)
        limits = options.limits(self.embedder)
        self.fingerprint = self.embedder.info.fingerprint()
        # The query regions a check cuts (index/regions.py), so a Ray scan finds what a local one does.
        self.spec = PrepareSpec(
            draft_size=limits.draft_size,
            pixels=self.embedder.pixel_config,
            want_pdq=True,
            max_bytes=limits.max_bytes,
            max_pixels=limits.max_pixels,
            regions=regions_of(query_regions),
        )
        self.fetcher = SafeFetcher(max_bytes, fetch_timeout, allow_loopback=allow_loopback)
        self.pool = ThreadPoolExecutor(16, thread_name_prefix="ray-scan-fetch")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from index.prepare import prepare

        sources = [
            pickle.loads(u) for u in batch["sources"]
        ]  # per listing: URLs, then (name, blob path) pairs
        flat = [(i, source) for i, item_sources in enumerate(sources) for source in item_sources]
        fetched = list(self.pool.map(self._fetch, [source for _, source in flat]))
        photos: list[list[Any]] = [[] for _ in sources]
        inputs, slots = [], []
        for (i, _url), got in zip(flat, fetched):
            if isinstance(got, DomainError):
                photos[i].append((got.status, got.code, got.message))
                continue
            prepared = prepare(got.data, self.spec)
            if prepared.rejected:
                photos[i].append(
                    (413 if prepared.rejected[2] else 422, prepared.rejected[0], prepared.rejected[1])
                )
                continue
            photos[i].append(None)  # filled below with the embedded photo
            slots.append((i, len(photos[i]) - 1, got.name, got.data, prepared.pdq, len(inputs)))
            inputs.extend(prepared.model_inputs)  # the whole photo, then its regions
        vectors, failed = self.embedder.embed_inputs(inputs) if inputs else (np.zeros((0, 1), np.float32), {})
        regions = len(self.spec.regions)
        for i, position, name, data, pdq, start in slots:
            rows = range(start, start + regions)
            if any(j in failed for j in rows):
                photos[i][position] = (422, "embed_failed", next(str(failed[j]) for j in rows if j in failed))
            else:
                photos[i][position] = (
                    name,
                    data,
                    np.asarray(vectors[start : start + regions], np.float32),
                    pdq.hex,
                    pdq.quality,
                    self.fingerprint,
                )
        return {
            "item_id": batch["item_id"],
            "photos": np.array([pickle.dumps(p) for p in photos], dtype=object),
        }

    def _fetch(self, source: str | tuple[str, str]):
        """A URL through the safe fetcher, or a photo of the scan's archive from the (shared) blob store."""
        if isinstance(source, tuple):
            name, path = source
            try:
                return Fetched(name, Path(path).read_bytes(), "")
            except FileNotFoundError:
                return InvalidInput("missing_blob", f"{name}: the archived photo is not in the blob store")
        try:
            return self.fetcher.fetch(source)
        except DomainError as exc:
            return exc


def photos_of(raw: bytes) -> list[tuple[str, bytes, Embedded] | DomainError]:
    """An actor's photos for one listing: (name, bytes, embedded) each, or the error that photo alone got."""
    out: list[tuple[str, bytes, Embedded] | DomainError] = []
    for photo in pickle.loads(raw):
        if len(photo) == 3:
            out.append(error_of_status(*photo))
        else:
            name, data, vector, pdq_hex, quality, fingerprint = photo
            out.append((name, data, Embedded(vector, PdqHash.from_hex(pdq_hex, quality), fingerprint)))
    return out


def scan_with_ray(
    items: Sequence[ScanItem],
    model: str,
    settings: Settings,
    blobs: BlobStore,
    check_batch: Callable[[list[tuple[ScanItem, list]]], Any],
    address: str | None = None,
) -> None:
    """Embed ``items``' photos on Ray and hand each returned batch to ``check_batch`` (an async callable)."""
    import ray

    if not items:
        return
    gpus, cpus_per_actor = connect(address)
    by_id = {item.id: item for item in items}
    dataset = ray.data.from_items(
        [
            {
                "item_id": item.id,
                "sources": pickle.dumps(
                    list(item.listing["image_urls"])
                    + [
                        (name, str(blobs.path_for(digest).resolve()))
                        for name, digest in item.listing.get("image_blobs", [])
                    ]
                ),
            }
            for item in items
        ]
    )
    embedded = dataset.map_batches(
        ScanEmbedActor,
        fn_constructor_kwargs={
            "model": model,
            "options": ModelOptions.from_settings(settings, device="cuda" if gpus else "cpu"),
            "max_bytes": settings.max_image_bytes,
            "fetch_timeout": settings.fetch_timeout_seconds,
            "allow_loopback": settings.unsafe_fetch_allow_loopback_for_tests,
            "query_regions": settings.query_regions,
        },
        batch_size=RAY_BATCH,
        concurrency=max(1, gpus),
        num_gpus=1 if gpus else 0,
        num_cpus=None if gpus else cpus_per_actor,
        batch_format="numpy",
    )
    for batch in embedded.iter_batches(batch_size=RAY_BATCH * 4, batch_format="numpy"):
        asyncio.run(
            check_batch(
                [(by_id[int(i)], photos_of(raw)) for i, raw in zip(batch["item_id"], batch["photos"])]
            )
        )
