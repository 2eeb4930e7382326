"""FAISS index wrapper: brand filter equals an exact filtered scan; snapshots round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from index.vector_index import VectorIndex


def _unit(rng, n, d):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_filtered_search_matches_exact_filtered_scan(tmp_path, index_type):
    rng = np.random.default_rng(7)
    vectors, queries = _unit(rng, 2000, 32), _unit(rng, 50, 32)
    ids = np.arange(10, 2010)
    brands = [("acme", "globex", "initech")[i % 3] for i in range(2000)]
    index = VectorIndex.build(ids[:0], vectors[:0], [], index_type=index_type)
    index.add(ids, vectors, brands)
    index.remove([int(i) for i in ids[:100]])
    alive = np.ones(2000, bool)
    alive[:100] = False
    for brand in ("acme", "globex"):
        mask = alive & np.array([b == brand for b in brands])
        exact = queries @ vectors[mask].T
        expected_top = ids[mask][exact.argmax(axis=1)]
        similarities, found = index.search(queries, 10, brand=brand)
        assert np.array_equal(found[:, 0], expected_top)
        assert np.allclose(similarities[:, 0], exact.max(axis=1), atol=1e-5)
        assert all(brands[i - 10] == brand for i in found.ravel())
    similarities, found = index.search(queries, 5, brand="nobody")
    assert (found == -1).all()

    index.save(tmp_path / "index.npz", {"applied_seq": 9})
    loaded, meta = VectorIndex.load(tmp_path / "index.npz")
    assert meta == {"applied_seq": 9} and len(loaded) == 1900 and loaded.brands() == index.brands()
    assert np.array_equal(
        loaded.search(queries, 10, brand="acme")[1], index.search(queries, 10, brand="acme")[1]
    )


def test_re_adding_an_id_replaces_it():
    rng = np.random.default_rng(1)
    index = VectorIndex(8)
    a, b = _unit(rng, 2, 8)
    index.add([5], a[None], ["acme"])
    index.add([5], b[None], ["globex"])
    assert len(index) == 1 and index.brands() == {"globex": 1}
    assert index.search(b[None], 1)[1][0, 0] == 5


def test_ivf_index_filters_removes_and_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    centres = _unit(rng, 40, 32)
    vectors = centres[rng.integers(0, 40, 5000)] + 0.05 * rng.standard_normal((5000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(5000) + 1
    brands = ["small" if i % 50 == 0 else "big" for i in range(5000)]
    index = VectorIndex.build(ids, vectors, brands, index_type="ivf", nlist=64, nprobe=8)
    assert index.index_type == "ivf" and len(index) == 5000
    queries = vectors[:200] + 0.01 * rng.standard_normal((200, 32)).astype(np.float32)
    _, found = index.search(queries, 1)
    assert (found[:, 0] == ids[:200]).mean() > 0.95
    # A brand with 2 % of the vectors: scanned with more cells, still exactly its own top hits.
    small = np.array([b == "small" for b in brands])
    exact = ids[small][(queries @ vectors[small].T).argmax(axis=1)]
    _, found = index.search(queries, 5, brand="small")
    assert set(found.ravel()) <= set(ids[small]) and (found[:, 0] == exact).mean() > 0.95
    index.remove([1, 2, 3])
    assert len(index) == 4997 and 1 not in set(index.search(queries[:1], 5)[1].ravel())
    index.save(tmp_path / "ivf.npz", {})
    loaded, _ = VectorIndex.load(tmp_path / "ivf.npz")
    assert loaded.index_type == "ivf" and loaded.nprobe == 8
    assert np.array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])


def test_hnsw_deletions_are_tombstones_that_never_come_back(tmp_path):
    """Removed and replaced vectors stay in the graph but are never returned, across a snapshot and a compaction."""
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 3000, 48)
    ids = np.arange(1, 3001)
    brands = [("acme", "globex")[i % 2] for i in range(3000)]
    index = VectorIndex.build(ids, vectors, brands, index_type="hnsw")
    assert index.index_type == "hnsw" and index.tombstone_ratio == 0
    removed = [int(i) for i in ids[:900]]
    index.remove(removed)
    index.add([1500], vectors[0:1], ["acme"])  # re-added with another vector: its old one is a tombstone
    assert len(index) == 2100 and 0.29 < index.tombstone_ratio < 0.32

    def check(ix: VectorIndex) -> None:
        similarities, found = ix.search(vectors[:900], 10)
        assert not set(found.ravel().tolist()) & set(removed)
        assert found[0, 0] == 1500 and similarities[0, 0] > 0.999  # id 1500 now holds vector 0
        _, own = ix.search(vectors[1499:1500], 10)
        assert 1500 not in own[0, :1]  # its old vector is no longer id 1500's
        live = np.array([i for i in ids if i > 900 and i != 1500])
        _, top = ix.search(vectors[live - 1][:200], 1)
        assert (top[:, 0] == live[:200]).mean() >= 0.97  # graph recall through tombstones
        for brand in ("acme", "globex"):  # the brand filter is exact (a scan of the brand's live labels)
            mask = np.array([b == brand for b in brands]) & (ids > 900) & (ids != 1500)
            candidates, candidate_ids = vectors[mask], ids[mask]
            if brand == "acme":
                candidates, candidate_ids = (
                    np.vstack([candidates, vectors[0:1]]),
                    np.append(candidate_ids, 1500),
                )
            exact = vectors[2000:2020] @ candidates.T
            _, got = ix.search(vectors[2000:2020], 5, brand=brand)
            assert np.array_equal(got[:, 0], candidate_ids[exact.argmax(axis=1)])

    check(index)
    index.save(tmp_path / "hnsw.npz", {"applied_seq": 1})
    loaded, _ = VectorIndex.load(tmp_path / "hnsw.npz")
    assert (
        loaded.index_type == "hnsw"
        and len(loaded) == 2100
        and loaded.tombstone_ratio == index.tombstone_ratio
    )
    check(loaded)
    compact = VectorIndex.build(*_live(loaded), index_type="hnsw")
    assert compact.tombstone_ratio == 0 and len(compact) == 2100
    check(compact)


def _live(index: VectorIndex):
    labels, vectors = index.faiss_index.live_vectors()  # FAISS labels: reference id × stride + region number
    whole = labels % index.stride == 0
    ids = labels[whole] // index.stride
    return ids, vectors[whole], [index.brand_of(int(i)) for i in ids]


def test_auto_picks_hnsw_while_it_fits_the_memory_budget():
    from service.jobs.reindex import choose_index_type

    assert choose_index_type(10_000, 512, 4.0) == "flat"
    assert choose_index_type(1_000_000, 512, 4.0) == "hnsw"  # ~2.2 GB of vectors and links
    assert choose_index_type(1_000_000, 512, 1.0) == "ivf-pq"  # over the budget: compressed
