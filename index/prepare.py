"""The CPU side of embedding an upload, run in worker processes: decode → PDQ → model pixels.

One call does everything CPU-heavy a check needs from the bytes: Pillow decode with JPEG draft
(DCT scaling) and box reduction, the PDQ hash of that reduced image, and the resized, centre-
cropped ``uint8`` pixels the model takes. The result is small (a 224² crop is 150 KB), so it
crosses the process boundary cheaply; the model thread only stacks and normalises it.

Why processes: decoding in threads of one Python process stops scaling at one or two cores
(measured on an H200 host: ~350 img/s with 8–16 threads vs ~1,700 img/s in 16 processes), and
the HTTP event loop shares that interpreter. ``CpuWorkers(0)`` runs the same function on
threads in-process (debugging, or hosts where spawning processes is not wanted).

Why PDQ from the reduced image: PDQ itself first reduces any input to 64 × 64 (Jarosz filters),
so an image already reduced to ≥ 2× the model's input gives the same hash within a few bits —
``tests/index/test_prepare.py`` measures it — at a fraction of a full-size decode's cost.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
from PIL import Image

from index.images import ImageRejected, decode_image, pdq_source
from index.local_features import ReferenceKeypoints, keypoint_image, reference_keypoints
from index.pdq import PdqHash, compute_pdq
from index.preprocess import PreprocessConfig, resize_and_crop
from index.regions import WHOLE, Region, crops

UNLIMITED = 1 << 62


@dataclass(frozen=True)
class PrepareSpec:
    """What a worker makes from the bytes. Limits were checked by the dispatcher (``images.admit``)."""

    draft_size: tuple[int, int] | None  # decode JPEGs no larger than this (the model's need)
    pixels: PreprocessConfig | None  # the model's fast preprocessing; None → return the decoded image instead
    want_model_input: bool = True  # False when the model decodes the bytes itself (on its device)
    want_pdq: bool = True
    max_bytes: int = UNLIMITED
    max_pixels: int = UNLIMITED
    regions: tuple[Region, ...] = (WHOLE,)  # the whole image first; the others come back in ``region_inputs``
    # Local features (index.local_features): "query" → the image keypoints are detected on (``keypoint_image``;
    # the serving process detects them while the model runs), "reference" → the keypoints, the mirror's too.
    keypoints: Literal["query", "reference"] | None = None


@dataclass
class Prepared:
    pixels: np.ndarray | None = None  # crop × crop × 3 uint8, when the spec has a pixel config
    image: Image.Image | None = None  # the decoded image, for models without a fast path
    pdq: PdqHash | None = None
    source_size: tuple[int, int] | None = None
    media_type: str | None = None
    rejected: tuple[str, str, bool] | None = (
        None  # ImageRejected (code, message, too_large); never raised across processes
    )
    seconds: dict[str, float] | None = None  # per-stage time in the worker (decode, pdq, resize)
    region_inputs: list[np.ndarray | Image.Image] | None = None  # model inputs of the spec's other regions
    keypoint_image: np.ndarray | None = None  # grayscale, at most local_features.MAX_SIDE a side
    keypoints: ReferenceKeypoints | None = None

    def raise_if_rejected(self) -> None:
        if self.rejected is not None:
            raise ImageRejected(*self.rejected)

    @property
    def model_input(self) -> np.ndarray | Image.Image | None:
        return self.pixels if self.pixels is not None else self.image

    @property
    def model_inputs(self) -> list[np.ndarray | Image.Image]:
        """The whole image's model input, then each other region's."""
        return [self.model_input, *(self.region_inputs or ())]


def prepare(data: bytes, spec: PrepareSpec) -> Prepared:
    """Decode + hash + resize one image. Bad images come back with ``rejected`` set, never as exceptions."""
    started = time.perf_counter()
    try:
        image = decode_image(data, spec.max_bytes, spec.max_pixels, draft_size=spec.draft_size)
    except ImageRejected as exc:
        return Prepared(rejected=(exc.code, exc.message, exc.too_large))
    decoded = time.perf_counter()
    pdq = compute_pdq(pdq_source(image)) if spec.want_pdq else None
    hashed = time.perf_counter()
    image.info.pop("pdq_source", None)  # hashed; not worth pickling back
    out = Prepared(
        pdq=pdq, source_size=image.info.get("source_size"), media_type=image.info.get("media_type")
    )
    if spec.want_model_input:
        if spec.pixels is not None:
            out.pixels = resize_and_crop(image, spec.pixels)
        else:
            out.image = image
        others = crops(image, tuple(region for region in spec.regions if not region.is_whole))
        if others:
            out.region_inputs = (
                [resize_and_crop(r, spec.pixels) for r in others] if spec.pixels is not None else others
            )
    resized = time.perf_counter()
    if spec.keypoints == "query":
        out.keypoint_image = keypoint_image(image)
    elif spec.keypoints == "reference":
        out.keypoints = reference_keypoints(image)
    out.seconds = {
        "decode": decoded - started,
        "pdq": hashed - decoded,
        "resize": resized - hashed,
        "keypoint_image": time.perf_counter() - resized,
    }
    return out


def prepare_file(path: str, spec: PrepareSpec) -> Prepared:
    """:func:`prepare` for a stored blob, read by the worker itself (no bytes through the pipe)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return Prepared(rejected=("missing_blob", "the image file is not in the blob store", False))
    return prepare(data, spec)


def _init_worker(initializer: Callable[[], Any] | None) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed with SIGKILL cannot stop its workers, and a worker waiting for its next task
    # would wait forever: it exits as soon as it is orphaned.
    parent = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="orphan-watch", daemon=True).start()
    # One image per worker at a time: BLAS threads (numpy's matrix products in PDQ) would only spin
    # against the other workers and the model for the same cores (measured: PDQ 16.8 → 2-3 ms).
    global _BLAS_LIMIT
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT = threadpool_limits(1)
    if initializer is not None:
        initializer()


_BLAS_LIMIT = None  # kept alive for the worker's lifetime


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


class WorkerCrashed(RuntimeError):
    """A worker process died while handling this input (twice: once more on a fresh pool)."""


class CpuWorkers:
    """A pool for CPU-heavy image work: ``processes`` spawned workers, or threads in-process when 0.

    A worker that dies (a decoder crash, the OOM killer) breaks a ``ProcessPoolExecutor`` for good;
    :meth:`call` then starts a fresh pool and retries that input once, so one poisonous image
    costs its own request (:class:`WorkerCrashed`), never the service.
    """

    def __init__(self, processes: int, threads: int = 4, initializer: Callable[[], Any] | None = None):
        self.processes = processes
        self.threads = threads
        self.initializer = initializer
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> Executor:
        if self.processes > 0:
            # spawn, not fork: the parent holds torch/OpenMP threads and locks a forked child would inherit.
            return ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.initializer,),
            )
        return ThreadPoolExecutor(self.threads, thread_name_prefix="prepare")

    @property
    def size(self) -> int:
        return self.processes or self.threads

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._executor.submit(fn, *args)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on a worker and wait for it; restarts a broken pool (see the class note)."""
        for attempt in (1, 2):
            executor = self._executor
            try:
                return executor.submit(fn, *args).result()
            except BrokenProcessPool:
                with self._lock:
                    if self._executor is executor:  # the first caller to notice replaces it
                        executor.shutdown(wait=False, cancel_futures=True)
                        self._executor = self._start()
                if attempt == 2:
                    raise WorkerCrashed("an image worker process died while handling this input") from None
        raise AssertionError("unreachable")

    def map(self, fn: Callable[..., Any], *iterables: Any, chunksize: int = 1):
        if self.processes:
            return self._executor.map(fn, *iterables, chunksize=chunksize)
        return self._executor.map(fn, *iterables)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def default_worker_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
