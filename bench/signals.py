"""What each verdict signal costs per check, against the part it extends, in the same run.

    python -m bench.signals [--hashes 100000] [--repeat 2000]

* dihedral PDQ: hashing a photo with its 7 rotated/mirrored variants vs the plain hash, and one
  Hamming scan of the index with 8 query hashes vs 1;
* the look-alike classifier: applying a brand's probe to a query (gate + dot product);
* listing scoring (noisy-OR, seller and price terms) of a 5-photo listing.

Prints p50 microseconds per call and the ratio to the baseline it extends.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _p50_us(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    from index.pdq import PdqHash, PdqIndex, _bits, _quality, compute_pdq, dct_matrix, hash_from_small
    from index.photos import packaged_photos
    from scoring.listing import PhotoOutcome, score_listing
    from scoring.lookalike import BrandProbe, ProbeSet, look_alike
    from scoring.scorers import Thresholds

    rng = np.random.default_rng(0)
    photo = packaged_photos()["coffee"].convert("RGB").resize((1000, 750))
    small = rng.random((64, 64), dtype=np.float32) * 255

    def plain() -> PdqHash:
        dct = dct_matrix()
        return PdqHash(_bits(dct @ small @ dct.T), _quality(small))

    rows = []
    base, extended = _p50_us(plain, args.repeat), _p50_us(lambda: hash_from_small(small), args.repeat)
    full = _p50_us(lambda: compute_pdq(photo), max(50, args.repeat // 20))
    rows.append(("PDQ hash of a 1000x750 photo (filter + DCT + bits)", full, None))
    rows.append(("  DCT + bits: plain hash", base, None))
    rows.append(("  DCT + bits + 7 dihedral variants", extended, extended / base))

    index = PdqIndex()
    codes = rng.integers(0, 256, size=(args.hashes, 32), dtype=np.uint8)
    index.add(list(range(args.hashes)), [PdqHash(c.tobytes(), 100) for c in codes])
    query = compute_pdq(photo)
    bare = PdqHash(query.bits, query.quality)
    one = _p50_us(lambda: index.search(bare), max(20, args.repeat // 50))
    eight = _p50_us(lambda: index.search(query), max(20, args.repeat // 50))
    rows.append((f"PDQ search, {args.hashes:,} hashes, 1 query hash", one, None))
    rows.append((f"PDQ search, {args.hashes:,} hashes, 8 dihedral query hashes", eight, eight / one))

    views = rng.standard_normal((2, 512)).astype(np.float32)  # the whole photo and its 80 % centre
    views /= np.linalg.norm(views, axis=1, keepdims=True)

    def probe(brand: str) -> BrandProbe:
        return BrandProbe(
            brand,
            "fp",
            "v",
            tuple(rng.standard_normal(512).tolist()),
            0.1,
            tuple(rng.standard_normal(512).tolist()),
            0.0,
            -100.0,
            0.9,
            0.95,
            {"authentic": 20, "counterfeit": 20},
        )

    hundred = ProbeSet({f"brand-{i}": probe(f"brand-{i}") for i in range(100)})
    rows.append(
        (
            "look-alike classifiers, 1 brand, query of 2 views (512-d)",
            _p50_us(lambda: look_alike({"brand-0": hundred["brand-0"]}, views, None), args.repeat),
            None,
        )
    )
    rows.append(
        (
            "look-alike classifiers, 100 brands scored, no brand hint",
            _p50_us(lambda: look_alike(hundred, views, None), max(20, args.repeat // 20)),
            None,
        )
    )
    photos = [
        PhotoOutcome(float(p), "lookalike" if i % 2 else "copy", "acme") for i, p in enumerate(rng.random(5))
    ]
    rows.append(
        (
            "listing score, 5 photos + seller + price",
            _p50_us(lambda: score_listing(photos, Thresholds(), 0.4, 20.0, 100.0), args.repeat),
            None,
        )
    )

    width = max(len(name) for name, _, _ in rows)
    for name, micros, ratio in rows:
        print(
            f"{name:<{width}}  p50 {micros:9.1f} µs"
            + (f"  x{ratio:.2f} of the baseline above" if ratio else "")
        )


if __name__ == "__main__":
    main()
