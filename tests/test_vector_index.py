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
