"""Search at scale: 1 M unit vectors (512-d), the project's search call vs raw FAISS on the same index.

    python -m bench.search [--n 1000000] [--queries 1000] [--data random|clustered] [--index-type ivf|ivf-pq|hnsw]

Prints, per index type and nprobe: p50/p99 single-query latency of ``VectorIndex.search`` and of
the FAISS index called directly with the same parameters, their ratio, recall@10 against exact
search, brand-filtered latency, and index RAM per million vectors.

``random`` data (the issue's definition) is the hardest case for any ANN index: in 512-d,
uniformly random points have no neighbourhood structure (top-10 similarities ≈ 0.18 vs 0 ± 0.044
for everything else). ``clustered`` data (products photographed many times) is closer to a real
reference bank.
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from index.vector_index import VectorIndex


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(kind: str, n: int, queries: int, dim: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if kind == "random":
        vectors = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):
            vectors[start : start + 100_000] = unit(
                rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
            )
        return vectors, unit(rng.standard_normal((queries, dim), dtype=np.float32))
    centres = unit(rng.standard_normal((n // 20, dim), dtype=np.float32))
    vectors = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        count = min(100_000, n - start)
        vectors[start : start + count] = unit(
            centres[rng.integers(0, len(centres), count)]
            + 0.04 * rng.standard_normal((count, dim), dtype=np.float32)
        )
    picks = rng.integers(0, n, queries)
    return vectors, unit(vectors[picks] + 0.02 * rng.standard_normal((queries, dim), dtype=np.float32))


def latencies(fn, queries: np.ndarray) -> np.ndarray:
    out = np.empty(len(queries))
    for i in range(len(queries)):
        started = time.perf_counter()
        fn(queries[i : i + 1])
        out[i] = time.perf_counter() - started
    return out * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--data", choices=("random", "clustered"), default="random")
    parser.add_argument("--nlist", type=int, default=4096)
    parser.add_argument("--index-type", choices=("ivf", "ivf-pq", "hnsw"), default="ivf")
    parser.add_argument("--nprobes", default="16,64,256", help="IVF: cells scanned; HNSW: efSearch values")
    parser.add_argument(
        "--delete-fraction",
        type=float,
        default=0.0,
        help="HNSW: tombstone this fraction of the vectors before measuring (the service's deletions)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    started = time.perf_counter()
    vectors, queries = make_data(args.data, args.n, args.queries, args.dim, rng)
    ids = np.arange(args.n, dtype=np.int64) + 1
    brands = [f"brand-{i % 10}" for i in range(args.n)]  # 10 brands, 10 % each
    _, exact = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    exact_ids = exact + 1
    print(f"data {args.data}: {args.n} x {args.dim}, exact top-10 in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    index = VectorIndex.build(ids, vectors, brands, index_type=args.index_type, nlist=args.nlist)
    build_s = time.perf_counter() - started
    hnsw = args.index_type == "hnsw"
    if hnsw and args.delete_fraction:
        dead = ids[rng.random(args.n) < args.delete_fraction]
        index.remove(dead.tolist())
        alive = np.ones(args.n, bool)
        alive[dead - 1] = False
        _, exact = faiss.knn(queries, vectors[alive], 10, metric=faiss.METRIC_INNER_PRODUCT)
        exact_ids = ids[alive][exact]
        print(f"tombstoned {len(dead)} vectors ({index.tombstone_ratio:.0%} of the graph's labels)")
    del vectors
    blob = index.faiss_index.serialize() if hnsw else faiss.serialize_index(index.faiss_index)
    ram_mb = blob.nbytes / 1e6 / (args.n / 1e6)
    print(
        f"{args.index_type} ({'M=32' if hnsw else f'{args.nlist} lists'}) built in {build_s:.0f} s; "
        f"index RAM {ram_mb:.0f} MB per million vectors"
    )
    print(
        f"{'efSearch' if hnsw else 'nprobe':>6} {'recall@10':>9} {'ours p50':>9} {'ours p99':>9} {'faiss p50':>10} {'faiss p99':>10} "
        f"{'ratio':>6} {'brand p50':>10} {'brand p99':>10}"
    )
    summary = None
    faiss.omp_set_num_threads(1)  # single-query latency: one thread per query, as a serving worker would
    for nprobe in (int(p) for p in args.nprobes.split(",")):
        if hnsw:  # the raw baseline: the FAISS graph searched directly, with the same tombstone filter
            index.faiss_index.ef_search = nprobe
            params = index.faiss_index.graph_params(
                nprobe
            )  # efSearch and the tombstone filter, as the wrapper uses
            raw_index = index.faiss_index.graph
        else:
            index.nprobe = nprobe
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            raw_index = index.faiss_index
        ours = latencies(lambda q: index.search(q, 10), queries)
        raw = latencies(lambda q, p=params, r=raw_index: r.search(q, 10, params=p), queries)
        branded = latencies(lambda q: index.search(q, 10, brand="brand-3"), queries[:200])
        _, found = index.search(queries, 10)
        recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact_ids)])
        ratio = np.median(ours) / np.median(raw)
        print(
            f"{nprobe:>6} {recall:>9.3f} {np.median(ours):>9.3f} {np.percentile(ours, 99):>9.3f} {np.median(raw):>10.3f} "
            f"{np.percentile(raw, 99):>10.3f} {ratio:>6.2f} {np.median(branded):>10.3f} {np.percentile(branded, 99):>10.3f}"
        )
        if (
            summary is None
            or (recall >= 0.95 and summary[1] < 0.95)
            or (summary[1] < 0.95 and recall > summary[1])
        ):
            summary = (nprobe, recall, np.percentile(ours, 99), ratio)
    nprobe, recall, p99, ratio = summary
    print(
        f"SUMMARY search {args.index_type} {args.data} n={args.n}: ours/raw p50 = {ratio:.2f} (goal <= 1.1); at "
        f"{'efSearch' if hnsw else 'nprobe'} {nprobe} "
        f"recall@10 {recall:.3f} (goal >= 0.95), p99 {p99:.2f} ms (goal <= 2); {ram_mb:.0f} MB per million"
    )


if __name__ == "__main__":
    main()
