"""Embedding throughput: bare model forward vs the service's pipeline (bytes → prepared input → forward).

    python -m bench.embed --model open_clip:ViT-B-32@random [--device cuda] [--batch-size 256]
    python -m bench.embed --null-model --workers 1,2      # how fast the pipeline alone can feed a model

The bare figure is the model's forward pass alone on an already-preprocessed batch, on the device.
The full figure starts from JPEG bytes of mixed sizes and runs the reindex pipeline for whole images
(``service.jobs.reindex.reindex_spec``): CPU worker processes decode (JPEG draft to the model's size: no PDQ
is hashed here, unlike checks, which decode to >= 512 px), resize and crop to ``uint8`` pixels,
prefetching the next batches while the model runs this one (or, where the model decodes on its
device — nvJPEG on CUDA — the bytes go straight to it). Per-stage time is printed per image; the summary gives full/bare.
With ``--null-model`` the forward pass is a no-op: the figure is the pipeline's feed rate, and
the summary compares the first and last worker counts.
"""

from __future__ import annotations

import argparse
import io
import time
from collections import defaultdict
from statistics import median

import torch

from index.images import decode_image
from index.models import ModelUnavailableError, load_embedder, resolve_device
from index.photos import packaged_photos
from index.prepare import CpuWorkers, prepare
from service.jobs.reindex_pipeline import reindex_spec

SIZES = [(640, 480), (1024, 768), (1600, 1200), (3000, 2000), (480, 640), (800, 800)]


def real_jpegs(count: int) -> list[bytes]:
    photos = list(packaged_photos().values())
    blobs = []
    for i in range(count):
        buffer = io.BytesIO()
        photos[i % len(photos)].convert("RGB").resize(SIZES[i % len(SIZES)]).save(buffer, "JPEG", quality=90)
        blobs.append(buffer.getvalue())
    return blobs


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_forward(embedder, jpegs: list[bytes], batch_size: int, batches: int) -> float:
    base = embedder.base
    big = 1 << 40
    batch = base.preprocess(
        [decode_image(d, big, big, base.draft_size) for d in (jpegs * batch_size)[:batch_size]]
    )
    batch = batch.to(base.device)
    base.forward_batch(batch)  # warm-up (cuDNN autotuning, allocator)
    synchronise(str(base.device))
    started = time.perf_counter()
    for _ in range(batches):
        base.forward_batch(batch)
    return batches * batch_size / (time.perf_counter() - started)


def full_path(
    embedder, jpegs: list[bytes], batch_size: int, batches: int, workers: int, prefetch: int = 3
) -> tuple[float, dict[str, float]]:
    """Images/second through the pipeline, and seconds per image per stage (summed over workers)."""
    spec = reindex_spec(
        embedder
    )  # what a reindex prepares for a whole image (no PDQ: decoded at the model's size)
    pool = CpuWorkers(workers)
    stages: dict[str, float] = defaultdict(float)
    try:

        def submit(i: int) -> list:
            chunk = [jpegs[(i * batch_size + j) % len(jpegs)] for j in range(batch_size)]
            if embedder.decodes_on_device:
                return chunk
            return [pool.submit(prepare, data, spec) for data in chunk]

        def inputs_of(pending: list) -> list:
            if embedder.decodes_on_device:
                return pending
            prepared = [f.result() for f in pending]
            for p in prepared:
                for stage, seconds in (p.seconds or {}).items():
                    stages[stage] += seconds
            return [p.model_input for p in prepared]

        embedder.embed_inputs(inputs_of(submit(0)))  # warm-up: workers spawned, model warm
        stages.clear()
        queue = [submit(i) for i in range(prefetch)]
        forward = 0.0
        started = time.perf_counter()
        for i in range(batches):
            inputs = inputs_of(queue.pop(0))
            queue.append(submit(i + prefetch))
            t = time.perf_counter()
            embedder.embed_inputs(inputs)
            forward += time.perf_counter() - t
        elapsed = time.perf_counter() - started
        for pending in queue:
            inputs_of(pending)
    finally:
        pool.shutdown()
    count = batches * batch_size
    per_image = {stage: seconds / count for stage, seconds in stages.items()}
    per_image["model (incl. device decode)" if embedder.decodes_on_device else "model"] = forward / count
    return count / elapsed, per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="open_clip:ViT-B-32@random")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256 on a GPU, 32 on CPU")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument(
        "--workers", default=None, help="comma-separated CPU worker process counts (default: the service's)"
    )
    parser.add_argument("--device-decode", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx", "onnx-int8"),
        default="auto",
        help="the full path's runtime (as COUNTERFEIT_RUNTIME); the bare forward of every runtime is measured",
    )
    parser.add_argument(
        "--null-model", action="store_true", help="forward pass replaced by a no-op: the pipeline's feed rate"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="bare, full path, bare again: this many times; the median counts",
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    batch_size = args.batch_size or (256 if device.startswith("cuda") else 32)
    device_decode = {"auto": None, "on": True, "off": False}[args.device_decode]

    def load(runtime: str):
        return load_embedder(
            args.model,
            device=device,
            batch_size=batch_size,
            device_decode=device_decode,
            null_forward=args.null_model,
            runtime=runtime,
        )

    # The bare forward of every runtime that runs here; the full path is compared with the fastest of them.
    bare_embedders = {"torch": load("torch")}
    for runtime in ("onnx", "onnx-int8") if args.runtime == "onnx-int8" else ("onnx",):
        if args.null_model:
            break
        try:
            bare_embedders[runtime] = load(runtime)
        except ModelUnavailableError as exc:
            print(f"{runtime}: not measured ({exc})")
    if args.runtime not in ("auto", "torch") and args.runtime not in bare_embedders:
        print(
            f"SUMMARY embed {args.model} {device}: the {args.runtime} runtime does not run this model (above)"
        )
        return
    embedder = load(args.runtime) if args.runtime != "torch" else bare_embedders["torch"]
    from service.settings import Settings

    # Default: what the service would run (one worker per core, one fewer when the model is on the CPU).
    counts = (
        [int(n) for n in args.workers.split(",")]
        if args.workers
        else [Settings(device=device).resolved_cpu_workers]
    )
    jpegs = real_jpegs(max(batch_size, 64))
    print(
        f"model {args.model}{' (NULL forward)' if args.null_model else ''}  device {device}  batch {batch_size}  "
        f"torch threads {torch.get_num_threads()}  device decode {embedder.decodes_on_device}  jpeg sizes {SIZES}  "
        f"full path on {embedder.base.runtime}"
    )
    ratios, feeds, bares, bests, fastest_runtimes = [], [], [], [], []
    first, last = counts[0], counts[-1]
    for round_ in range(args.rounds):
        # The VM's speed drifts within minutes: each round's ratio is taken against the bare figure
        # measured just before and just after its full-path runs, and the summary is the median round.
        before = {rt: bare_forward(e, jpegs, batch_size, args.batches) for rt, e in bare_embedders.items()}
        for runtime, rate in before.items():
            print(f"round {round_}  bare forward {runtime:5s}     {rate:9.1f} img/s")
        rates = {}
        for workers in counts:
            rate, per_image = full_path(embedder, jpegs, batch_size, args.batches, workers)
            rates[workers] = rate
            breakdown = "  ".join(f"{stage} {seconds * 1000:.2f}" for stage, seconds in per_image.items())
            print(
                f"round {round_}  full path, {workers:2d} worker processes {rate:9.1f} img/s   "
                f"ms/image (CPU time per worker): {breakdown}"
            )
        after = {rt: bare_forward(e, jpegs, batch_size, args.batches) for rt, e in bare_embedders.items()}
        averaged = {rt: (before[rt] + after[rt]) / 2 for rt in before}
        fastest = max(averaged, key=averaged.get)
        bare = averaged[fastest]
        print(
            f"round {round_}  bare forward again     "
            + "  ".join(f"{rt} {rate:.1f}" for rt, rate in after.items())
            + f" img/s; full/bare(fastest: {fastest}) {max(rates.values()) / bare:.2f}"
        )
        fastest_runtimes.append(fastest)
        ratios.append(max(rates.values()) / bare)
        feeds.append(rates[last] / rates[first])
        bares.append(bare)
        bests.append(max(rates.values()))
    summarised = feeds if args.null_model else ratios
    spread = (
        f" ({min(summarised):.2f}-{max(summarised):.2f} over {args.rounds} rounds)" if args.rounds > 1 else ""
    )
    if args.null_model:
        print(
            f"SUMMARY embed-feed {args.model} {device}: null-model feed {rates[first]:.1f} img/s with {first} workers, "
            f"{rates[last]:.1f} with {last}: x{median(feeds):.2f}{spread} (goal >= 1.7 from 1 to 2)"
        )
    else:
        print(
            f"SUMMARY embed {args.model} {device}: full ({embedder.base.runtime}) / fastest bare "
            f"({max(set(fastest_runtimes), key=fastest_runtimes.count)}) = {median(ratios):.2f}{spread} (goal >= 0.9 "
            f"CPU, >= 0.8 GPU); bare {median(bares):.1f} img/s, full {median(bests):.1f} img/s at batch {batch_size}"
        )


if __name__ == "__main__":
    main()
