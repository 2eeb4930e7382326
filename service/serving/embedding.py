"""Runs the model for the service: requests that arrive together share one forward pass.

A dedicated worker thread takes the first queued input, drains whatever else is already
waiting (up to ``max_batch``), and — only when requests are arriving fast enough that another
is expected within ``max_wait`` — waits that long for the batch to fill. So one client is never
slowed by a wait nobody will use, while under load batches grow on their own (the model is busy,
inputs queue up) up to ``max_batch`` (256 on a GPU by default). Inputs are model-ready ``uint8``
pixels from the CPU workers, encoded bytes the model decodes on its device, or PIL images
(registration, replay); one :meth:`Embedder.embed_inputs` call takes any mix.

The queue is bounded: when it is full, :class:`QueueFull` is raised at once (the API answers
503 with Retry-After) instead of letting latency grow without bound.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Sequence

import numpy as np
from PIL import Image

from index.embedder import Embedder, EmbedderInfo, ModelInput
from service.core.metrics import Metrics


class QueueFull(RuntimeError):
    pass


class RunnerClosed(RuntimeError):
    """Submitted after close(): a caller used a serving it did not hold (ServingSlot.use) — a bug, not load."""


class EmbedFailed(ValueError):
    """The model side could not use this input (e.g. bytes neither the device decoder nor Pillow could read)."""


class BatchingModelRunner:
    def __init__(
        self,
        embedder: Embedder,
        max_batch: int = 32,
        max_wait_seconds: float = 0.005,
        max_queue: int = 256,
        metrics: Metrics | None = None,
    ):
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait_seconds
        self.max_queue = max_queue
        self.metrics = metrics or Metrics()
        self._queue: queue.Queue[tuple[ModelInput, Future, bool] | None] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._closed = False
        self._last_arrival = time.monotonic()
        self._arrival_gap = 1.0  # exponentially weighted mean seconds between submissions
        self._last_gap = 1.0  # seconds between the last two submissions
        self._worker = threading.Thread(target=self._run, name="embedding-batcher", daemon=True)
        self._worker.start()

    @property
    def info(self) -> EmbedderInfo:
        return self.embedder.info

    @property
    def runtime(self) -> str:
        """What runs the forward pass (index/runtimes.py): onnx or torch."""
        return getattr(self.embedder, "runtime", "torch")

    @property
    def draft_size(self) -> tuple[int, int] | None:
        return self.embedder.draft_size

    def submit(self, item: ModelInput, want_pdq: bool = False) -> Future:
        """Queue one input; the future resolves to its vector — or ``(vector, PDQ hash)`` with ``want_pdq``
        for bytes the model decodes on its device (it hashes them there too). Raises QueueFull when over capacity."""
        return self.submit_many([item], want_pdq)[0]

    def submit_many(self, items: Sequence[ModelInput], want_pdq: bool = False) -> list[Future]:
        """Queue the inputs of one request together (a photo and its query regions): all of them or, when
        they do not fit, none (QueueFull) — half a request queued would only waste the model's time. A
        request bigger than the whole queue is still taken when the queue is empty, so it cannot starve."""
        with self._pending_lock:
            if self._closed:  # queued behind the stop signal it would wait forever
                raise RunnerClosed(f"the model runner for {self.info.spec} was stopped")
            if self._pending and self._pending + len(items) > self.max_queue:
                self.metrics.rejected.inc()
                raise QueueFull(f"{self._pending} images are already waiting for the model")
            self._pending += len(items)
            self.metrics.queue_depth.set(self._pending)
            now = time.monotonic()
            self._last_gap = now - self._last_arrival
            self._arrival_gap = 0.9 * self._arrival_gap + 0.1 * self._last_gap
            self._last_arrival = now
            futures: list[Future] = [Future() for _ in items]
            for item, future in zip(items, futures):  # under the lock: one request's inputs stay together
                self._queue.put((item, future, want_pdq))
        return futures

    def embed(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        """Blocking convenience for callers on worker threads (registration, index replay, CLI)."""
        if not len(images):
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        futures = self.submit_many(images)
        return np.stack([f.result() for f in futures])

    def close(self, wait: bool = True) -> None:
        """Stop after what is already queued; ``wait`` joins the worker (not from an event loop)."""
        with self._pending_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if wait:
            self._worker.join(timeout=30)

    def _worth_waiting(self, have: int) -> bool:
        """Wait for more only if another submission is expected within ``max_wait``: submissions have been
        arriving faster than that, on average and just now (a lone client's gap is its whole round trip)."""
        return (
            have < self.max_batch
            and self.max_wait > 0
            and self._arrival_gap < self.max_wait
            and self._last_gap < self.max_wait
        )

    def _collect(self) -> list[tuple[ModelInput, Future, bool]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worth_waiting(len(batch)):
                    break
                try:
                    item = self._queue.get(timeout=remaining)
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
            started = time.perf_counter()
            hashes: dict | None = {} if any(want_pdq for _, _, want_pdq in batch) else None
            try:
                vectors, failures = self.embedder.embed_inputs([item for item, _, _ in batch], hashes)
            except Exception as exc:  # every caller in the batch gets the error
                for _, future, _ in batch:
                    future.set_exception(exc)
                continue
            self.metrics.embed_seconds.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(batch))
            for i, ((_, future, want_pdq), vector) in enumerate(zip(batch, vectors)):
                if i in failures:
                    future.set_exception(EmbedFailed(failures[i]))
                elif want_pdq:
                    future.set_result((vector, hashes.get(i) if hashes is not None else None))
                else:
                    future.set_result(vector)
