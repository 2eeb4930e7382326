"""Runs the model for the service: requests that arrive together share one forward pass.

A dedicated worker thread takes the first queued image, waits up to ``max_wait`` for more (up to
``max_batch``), embeds them in one call and resolves each caller's future. The queue is bounded:
when it is full, :class:`QueueFull` is raised at once (the API answers 503 with Retry-After)
instead of letting latency grow without bound.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Sequence

import numpy as np
from PIL import Image

from index.embedder import Embedder, EmbedderInfo
from service.metrics import Metrics


class QueueFull(RuntimeError):
    pass


class BatchingModelRunner:
    def __init__(self, embedder: Embedder, max_batch: int = 32, max_wait_seconds: float = 0.005,
                 max_queue: int = 256, metrics: Metrics | None = None):
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait_seconds
        self.max_queue = max_queue
        self.metrics = metrics or Metrics()
        self._queue: queue.Queue[tuple[Image.Image, Future] | None] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="embedding-batcher", daemon=True)
        self._worker.start()

    @property
    def info(self) -> EmbedderInfo:
        return self.embedder.info

    @property
    def draft_size(self) -> tuple[int, int] | None:
        return self.embedder.draft_size

    def submit(self, image: Image.Image) -> Future:
        """Queue one image; the future resolves to its vector. Raises QueueFull when over capacity."""
        with self._pending_lock:
            if self._pending >= self.max_queue:
                self.metrics.rejected.inc()
                raise QueueFull(f"{self._pending} images are already waiting for the model")
            self._pending += 1
            self.metrics.queue_depth.set(self._pending)
        future: Future = Future()
        self._queue.put((image, future))
        return future

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Blocking convenience for callers on worker threads (registration, index replay, CLI)."""
        if not images:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        futures = [self.submit(image) for image in images]
        return np.stack([f.result() for f in futures])

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=30)

    def _collect(self) -> list[tuple[Image.Image, Future]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # let the outer loop see the stop signal
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while (batch := self._collect()) is not None:
            with self._pending_lock:
                self._pending -= len(batch)
                self.metrics.queue_depth.set(self._pending)
            images = [image for image, _ in batch]
            started = time.perf_counter()
            try:
                vectors = self.embedder.embed(images)
            except Exception as exc:  # every caller in the batch gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.metrics.embed_seconds.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(batch))
            for (_, future), vector in zip(batch, vectors):
                future.set_result(vector)
