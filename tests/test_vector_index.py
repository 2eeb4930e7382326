"""FAISS index wrapper: brand filter equals an exact filtered scan; snapshots round-trip."""
from __future__ import annotations

import numpy as np

from index.vector_index import VectorIndex


def _unit(rng, n, d):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_filtered_search_matches_exact_filtered_scan(tmp_path):
    rng = np.random.default_rng(7)
    vectors, queries = _unit(rng, 2000, 32), _unit(rng, 50, 32)
    ids = np.arange(10, 2010)
    brands = [("acme", "globex", "initech")[i % 3] for i in range(2000)]
    index = VectorIndex(32)
    index.add(ids, vectors, brands)
    index.remove([int(i) for i in ids[:100]])
    alive = np.ones(2000, bool)
    alive[:100] = False
    for brand in ("acme", "globex"):
        mask = alive & np.array([b == brand for b in brands])
        exact = (queries @ vectors[mask].T)
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
    assert np.array_equal(loaded.search(queries, 10, brand="acme")[1], index.search(queries, 10, brand="acme")[1])


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
