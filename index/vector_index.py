"""A FAISS inner-product index keyed by reference id, with a per-brand search filter.

Index types: ``flat`` (exact; the default while a collection is small), ``ivf`` / ``ivf-pq``
(inverted lists over k-means cells; ``nprobe`` cells are scanned per query) and ``hnsw`` (a graph;
removals are tombstones, brand filters scan its flat storage exactly — see index/hnsw.py). All
support adding and removing ids while serving, which a live service needs.

Brand filtering: one global index plus, per brand, a cached ``faiss.IDSelectorBatch`` of that
brand's ids passed as a search parameter. FAISS then only scores the brand's vectors, so a
filtered search returns exactly the brand's top-k (no oversampling that can come back short,
no per-brand sub-index that multiplies memory or makes unfiltered searches loop over brands).
The selector is rebuilt lazily after the brand's id set changes. On an IVF index a brand that
holds a fraction ``f`` of the vectors is searched with ``nprobe / f`` cells (capped at all cells),
so a selective filter still finds its k nearest instead of coming back short.

Region vectors: a reference may carry vectors of its regions beside the whole image's
(``index/regions.py``). FAISS labels are ``reference id × LABEL_STRIDE + region number`` (0 = the
whole image), so one index, one brand selector and one removal cover them all; a search asks FAISS
for enough labels to fill ``k`` distinct references, counts each reference with its best vector
(a region ``REGION_PENALTY`` below its raw similarity) and returns reference ids, as before.
Snapshots from before region vectors (labels = reference ids) load with stride 1 and take none.

Persistence: :meth:`save` writes one ``.npz`` file (serialised index, ids, brands, caller
metadata) to a temp file, fsyncs it and renames it over the old one, so a crash leaves either the
old or the new snapshot, never a torn one.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np

from index.atomic import atomic_writer
from index.hnsw import TombstonedHnsw
from index.regions import REGION_PENALTY


@dataclass(frozen=True)
class IndexType:
    """One kind of index the service can build: how to make it from the vectors, how to recognise it in a loaded
    snapshot, and how many vectors it needs to train. Adding a kind is one entry in :data:`INDEX_TYPE_REGISTRY`;
    the reindex parameters, the API schema's enum and the benchmarks read the names from there."""

    name: str
    description: str
    make: Callable[
        [np.ndarray, int, int | None, int, int], Any
    ]  # vectors, dimension, nlist, train size, seed
    recognises: Callable[[Any], bool]
    min_vectors: int = 1


def _flat(vectors: np.ndarray, dimension: int, nlist: int | None, train_size: int, seed: int) -> Any:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))  # labels kept beside an exact index


def _trained_ivf(compressed: bool):
    def make(vectors: np.ndarray, dimension: int, nlist: int | None, train_size: int, seed: int) -> Any:
        # ~4·sqrt(n) cells, but at least 39 training points per cell (FAISS's k-means minimum).
        nlist = nlist or max(1, min(65536, int(4 * math.sqrt(len(vectors))), len(vectors) // 39))
        quantizer = faiss.IndexFlatIP(dimension)
        if not compressed:
            ivf = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        else:  # 64-byte codes for 512-d (1/32 of float32), approximate scores
            subquantizers = next(m for m in (64, 48, 32, 16, 8, 4, 2, 1) if dimension % m == 0)
            ivf = faiss.IndexIVFPQ(quantizer, dimension, nlist, subquantizers, 8, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(
            len(vectors), size=min(train_size, len(vectors)), replace=False
        )
        ivf.train(vectors[np.sort(sample)])
        return ivf

    return make


def _hnsw(vectors: np.ndarray, dimension: int, nlist: int | None, train_size: int, seed: int) -> Any:
    return TombstonedHnsw(dimension)


# Most specific first: an IVF-PQ index is also an IVF index.
INDEX_TYPE_REGISTRY: dict[str, IndexType] = {
    kind.name: kind
    for kind in (
        IndexType(
            "hnsw", "graph search; deletions are tombstones", _hnsw, lambda i: isinstance(i, TombstonedHnsw)
        ),
        IndexType(
            "ivf-pq",
            "inverted lists of product-quantised codes: 1/32 of the memory, approximate",
            _trained_ivf(compressed=True),
            lambda i: isinstance(i, faiss.IndexIVFPQ),
            min_vectors=10_000,  # 256 centroids per sub-quantiser need this much training data
        ),
        IndexType(
            "ivf",
            "inverted lists of full vectors",
            _trained_ivf(compressed=False),
            lambda i: isinstance(i, faiss.IndexIVF),
        ),
        IndexType("flat", "exact search", _flat, lambda i: True),
    )
}
INDEX_TYPES = ("flat", "ivf", "ivf-pq", "hnsw")  # the order the API and the docs list them in
assert set(INDEX_TYPES) == set(INDEX_TYPE_REGISTRY)
COMPACT_TOMBSTONE_RATIO = 0.2  # an HNSW generation with more dead labels than this should be rebuilt
LABEL_STRIDE = 8  # FAISS label = reference id × stride + region number: up to 8 vectors per reference


class VectorIndex:
    def __init__(self, dimension: int, faiss_index=None, nprobe: int = 32, stride: int = LABEL_STRIDE):
        self.dimension = dimension
        self._index = (
            faiss_index if faiss_index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        )
        self.nprobe = nprobe
        self.stride = stride  # 1: a snapshot from before region vectors (labels are reference ids)
        self._vectors_of: dict[int, int] = {}  # reference id -> how many vectors it has (1 + its regions)
        # how many references have each number of vectors: a search reads the largest in O(1), not by
        # scanning every reference (≈ 10 ms a query at a million references)
        self._widths: Counter[int] = Counter()
        self._brand_of: dict[int, str] = {}
        self._ids_by_brand: dict[str, set[int]] = {}
        self._selectors: dict[str, Any] = {}
        self._lock = threading.RLock()

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        brands: list[str],
        index_type: str = "flat",
        nlist: int | None = None,
        nprobe: int = 32,
        train_size: int = 100_000,
        seed: int = 0,
        regions: "list[np.ndarray | None] | None" = None,
    ) -> "VectorIndex":
        """A new index of ``index_type`` holding ``vectors`` (and each reference's ``regions``, if given);
        IVF cells are trained on a sample of the whole-image vectors."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        if index_type not in INDEX_TYPE_REGISTRY:
            raise ValueError(f"unknown index type {index_type!r}; known: {', '.join(INDEX_TYPES)}")
        made = INDEX_TYPE_REGISTRY[index_type].make(vectors, dimension, nlist, train_size, seed)
        index = cls(dimension, made, nprobe=nprobe)
        index.add(ids, vectors, brands, regions)
        return index

    @property
    def index_type(self) -> str:
        return next(name for name, kind in INDEX_TYPE_REGISTRY.items() if kind.recognises(self._index))

    @property
    def faiss_index(self):
        """The underlying FAISS index (benchmarks compare against calling it directly)."""
        return self._index

    def __len__(self) -> int:
        """How many references it holds (each with one or more vectors)."""
        return len(self._brand_of)

    @property
    def vector_count(self) -> int:
        """How many vectors it holds: the references' whole images and their regions."""
        return int(self._index.ntotal)

    def __contains__(self, reference_id: int) -> bool:
        return reference_id in self._brand_of

    @property
    def tombstone_ratio(self) -> float:
        """Dead labels / all labels in an HNSW graph (0 for the other types, which remove in place)."""
        if isinstance(self._index, TombstonedHnsw) and self._index.labels:
            return self._index.tombstones / self._index.labels
        return 0.0

    def brand_of(self, reference_id: int) -> str | None:
        return self._brand_of.get(reference_id)

    def ids(self) -> set[int]:
        with self._lock:
            return set(self._brand_of)

    def brands(self) -> dict[str, int]:
        with self._lock:
            return {brand: len(ids) for brand, ids in self._ids_by_brand.items() if ids}

    def add(
        self,
        ids: np.ndarray | list[int],
        vectors: np.ndarray,
        brands: list[str],
        regions: "list[np.ndarray | None] | None" = None,
    ) -> None:
        """Add or replace vectors; re-adding an existing id replaces it (idempotent replay). ``regions[i]``:
        the region vectors of reference ``ids[i]`` (``n × dimension``), or None."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dimension) or len(brands) != len(ids):
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dimension} and as many brands")
        extra = [
            np.zeros((0, self.dimension), np.float32)
            if r is None or self.stride == 1
            else np.asarray(r, np.float32)
            for r in (regions or [None] * len(ids))
        ]
        if len(extra) != len(ids) or any(
            r.ndim != 2 or r.shape[1] != self.dimension or len(r) >= self.stride for r in extra
        ):
            raise ValueError(
                f"expected per reference at most {self.stride - 1} region vectors of dimension {self.dimension}"
            )
        labels = np.concatenate(
            [ids * self.stride]
            + [
                np.arange(1, len(r) + 1, dtype=np.int64) + rid * self.stride
                for rid, r in zip(ids.tolist(), extra)
                if len(r)
            ]
        )
        stacked = (
            np.concatenate([vectors, *(r for r in extra if len(r))])
            if any(len(r) for r in extra)
            else vectors
        )
        with self._lock:
            self.remove([int(i) for i in ids if int(i) in self._brand_of])
            self._index.add_with_ids(np.ascontiguousarray(stacked), labels)
            for reference_id, brand, r in zip(ids.tolist(), brands, extra):
                self._count_vectors(reference_id, 1 + len(r))
                self._brand_of[reference_id] = brand
                self._ids_by_brand.setdefault(brand, set()).add(reference_id)
                self._selectors.pop(brand, None)

    def remove(self, ids: list[int]) -> int:
        with self._lock:
            present = [i for i in ids if i in self._brand_of]
            if present:
                self._index.remove_ids(self._labels(present))
            for reference_id in present:
                self._forget_vectors(reference_id)
                brand = self._brand_of.pop(reference_id)
                self._ids_by_brand[brand].discard(reference_id)
                self._selectors.pop(brand, None)
            return len(present)

    def _count_vectors(self, reference_id: int, count: int) -> None:
        self._forget_vectors(reference_id)
        self._vectors_of[reference_id] = count
        self._widths[count] += 1

    def _forget_vectors(self, reference_id: int) -> None:
        count = self._vectors_of.pop(reference_id, None)
        if count is not None:
            self._widths[count] -= 1
            if not self._widths[count]:
                del self._widths[count]

    def _labels(self, reference_ids) -> np.ndarray:
        """Every FAISS label of these references (their whole-image and region vectors)."""
        return np.fromiter(
            (rid * self.stride + r for rid in reference_ids for r in range(self._vectors_of.get(rid, 1))),
            dtype=np.int64,
        )

    def region_vectors(self) -> int:
        """How many region vectors the index holds beside the whole-image ones."""
        return sum(width * n for width, n in self._widths.items()) - len(self._vectors_of)

    def _selector(self, brand: str):
        selector = self._selectors.get(brand)
        if selector is None:
            ids = self._labels(self._ids_by_brand.get(brand, ()))
            if isinstance(self._index, TombstonedHnsw):  # HNSW selects by internal label
                selector = self._index.selector_for(ids)
            else:
                selector = faiss.IDSelectorBatch(ids)
                selector.ids_array = ids  # keep the numpy buffer alive as long as the selector
            self._selectors[brand] = selector
        return selector

    def search(self, queries: np.ndarray, k: int, brand: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k references by inner product, each with its best vector (a region counted ``REGION_PENALTY``
        lower). Returns ``(similarities, reference ids)``; missing slots have id -1."""
        similarities, ids, _ = self.search_regions(queries, k, brand)
        return similarities, ids

    def search_regions(
        self, queries: np.ndarray, k: int, brand: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`search`, and per result which of the reference's vectors matched (0: its whole image,
        ``n``: its ``n``-th region, in the order of its reference region preset)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self._lock:
            most = max(self._widths, default=1)
            similarities, labels = self._search_labels(queries, k * most, brand)
        if self.stride == 1:
            return similarities, labels, np.zeros(labels.shape, dtype=np.int64)
        if most == 1:  # one vector per reference: labels map straight to ids
            return (
                similarities,
                np.where(labels >= 0, labels // self.stride, -1),
                np.zeros(labels.shape, dtype=np.int64),
            )
        return _best_per_reference(similarities, labels, self.stride, k)

    def _search_labels(self, queries: np.ndarray, k: int, brand: str | None) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            selector, nprobe = None, self.nprobe
            if brand is not None:
                brand_size = len(self._ids_by_brand.get(brand, ()))
                if not brand_size:
                    return (
                        np.full((len(queries), k), -np.inf, dtype=np.float32),
                        np.full((len(queries), k), -1, dtype=np.int64),
                    )
                selector = self._selector(brand)
                nprobe = math.ceil(self.nprobe * len(self._brand_of) / brand_size)
            if isinstance(self._index, TombstonedHnsw):
                return self._index.search(queries, k, brand_selector=selector)
            if isinstance(self._index, faiss.IndexIVF):
                params = faiss.SearchParametersIVF(sel=selector, nprobe=min(nprobe, self._index.nlist))
            else:
                params = faiss.SearchParameters(sel=selector) if selector is not None else None
            return self._index.search(queries, k, params=params)

    def save(self, path: Path, metadata: dict[str, Any]) -> None:
        with self._lock:
            hnsw = self._index if isinstance(self._index, TombstonedHnsw) else None
            blob = hnsw.serialize() if hnsw else faiss.serialize_index(self._index)
            extra = {"hnsw_label_refs": hnsw.label_refs.copy()} if hnsw else {}
            ids = np.fromiter(self._brand_of.keys(), dtype=np.int64, count=len(self._brand_of))
            counts = np.fromiter(
                (self._vectors_of.get(i, 1) for i in ids.tolist()), dtype=np.int32, count=len(ids)
            )
            brand_names = sorted(self._ids_by_brand)
            codes = {name: i for i, name in enumerate(brand_names)}
            brand_codes = np.fromiter(
                (codes[b] for b in self._brand_of.values()), dtype=np.int32, count=len(ids)
            )
        with atomic_writer(Path(path)) as handle:
            np.savez(
                handle,
                index=blob,
                ids=ids,
                brand_codes=brand_codes,
                brand_names=np.array(json.dumps(brand_names)),
                metadata=np.array(json.dumps(metadata)),
                nprobe=np.array(self.nprobe),
                label_stride=np.array(self.stride),
                vector_counts=counts,
                **extra,
            )

    @classmethod
    def load(cls, path: Path) -> tuple["VectorIndex", dict[str, Any]]:
        with np.load(Path(path), allow_pickle=False) as data:
            if "hnsw_label_refs" in data:
                index = TombstonedHnsw.deserialize(data["index"], data["hnsw_label_refs"])
            else:
                index = faiss.deserialize_index(data["index"])
            brand_names = json.loads(str(data["brand_names"]))
            metadata = json.loads(str(data["metadata"]))
            stride = (
                int(data["label_stride"]) if "label_stride" in data else 1
            )  # 1: from before region vectors
            self = cls(index.d, index, nprobe=int(data["nprobe"]) if "nprobe" in data else 32, stride=stride)
            ids = data["ids"].tolist()
            counts = data["vector_counts"].tolist() if "vector_counts" in data else [1] * len(ids)
            for reference_id, code, count in zip(ids, data["brand_codes"].tolist(), counts):
                brand = brand_names[code]
                self._brand_of[reference_id] = brand
                self._count_vectors(reference_id, count)
                self._ids_by_brand.setdefault(brand, set()).add(reference_id)
        if sum(self._vectors_of.values()) != self._index.ntotal:
            raise ValueError(
                f"corrupt index snapshot {path}: {self._index.ntotal} vectors but {len(self._brand_of)} ids "
                f"with {sum(self._vectors_of.values())} vectors"
            )
        return self, metadata


def _best_per_reference(
    similarities: np.ndarray, labels: np.ndarray, stride: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAISS results over labels → per query row the top-k distinct references, each with its best vector
    (regions ``REGION_PENALTY`` below their raw similarity) and that vector's region number."""
    out_sims = np.full((len(labels), k), -np.inf, dtype=np.float32)
    out_ids = np.full((len(labels), k), -1, dtype=np.int64)
    out_regions = np.zeros((len(labels), k), dtype=np.int64)
    valid = labels >= 0
    values = np.where(valid & (labels % stride != 0), similarities - REGION_PENALTY, similarities)
    for row in range(len(labels)):
        best: dict[int, tuple[float, int]] = {}
        for label, value in zip(labels[row][valid[row]].tolist(), values[row][valid[row]].tolist()):
            reference_id, region = divmod(label, stride)
            if reference_id not in best or value > best[reference_id][0]:
                best[reference_id] = (value, region)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        out_ids[row, : len(ranked)] = [r for r, _ in ranked]
        out_sims[row, : len(ranked)] = [v for _, (v, _) in ranked]
        out_regions[row, : len(ranked)] = [n for _, (_, n) in ranked]
    return out_sims, out_ids, out_regions
