"""PDQ perceptual hashes (Meta's ThreatExchange algorithm) and a
FAISS binary index to find references within a Hamming distance.

PDQ catches what CLIP is too semantic for: a re-upload of a known-fake listing photo (resized,
re-compressed, lightly cropped or watermarked) stays within a small Hamming distance, while a
genuine product photographed differently does not. Following the PDQ documentation, matches are
within 31 bits of 256 and hashes with quality below 50 (flat, featureless images) are ignored.

The hash is computed here as matrix products, bit-compatible with the reference (``pdqhash``,
Meta's C++): the reference's Jarosz filter (box filters along rows and columns, twice) followed by
sampling 64 × 64 points is linear, so it equals ``A · luma · Bᵀ`` with ``A`` (64 × rows) and ``B``
(64 × columns) the sampled rows of the squared box filters — banded, so the product touches each
pixel about once. That is ~4× faster than the reference on a 1500 × 1000 image (whose column passes
stride through memory) and runs unchanged as tensor ops on a GPU (index/pdq_tensor.py).
``tests/index/test_pdq_reference.py`` checks the hashes against ``pdqhash`` (Meta's C++) bit for bit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

PDQ_BITS = 256
DEFAULT_MAX_DISTANCE = 31
MIN_QUALITY = 50


@dataclass(frozen=True)
class PdqHash:
    bits: bytes  # 32 bytes, most significant bit first
    quality: int  # 0..100
    # The hashes of the image's 7 other rotations and mirror images (same quality), when hashed here:
    # a query searched with all 8 finds a flipped or rotated re-upload of a known fake. Not stored or shared.
    variants: tuple[bytes, ...] = field(default=(), compare=False, repr=False)

    @property
    def hex(self) -> str:
        return self.bits.hex()

    @classmethod
    def from_hex(cls, text: str, quality: int) -> "PdqHash":
        return cls(bytes.fromhex(text), quality)

    @property
    def usable(self) -> bool:
        return self.quality >= MIN_QUALITY

    def distance(self, other: "PdqHash") -> int:
        return int(
            np.unpackbits(
                np.frombuffer(bytes(a ^ b for a, b in zip(self.bits, other.bits)), dtype=np.uint8)
            ).sum()
        )


SIDE = 64
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # the reference's weights


def _window(old: int) -> int:
    return (old + 2 * SIDE - 1) // (2 * SIDE)  # the reference's computeJaroszFilterWindowSize(old, 64)


def _box_span(o: int, length: int, full: int) -> tuple[int, int]:
    """The reference's box1DFloat: output ``o`` averages inputs ``[lo, hi)`` (clipped at the edges)."""
    half = (full + 2) // 2
    return max(0, o - full + half), min(length, o + half)


@lru_cache(maxsize=512)
def sampled_filter(length: int) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """``64 × length``: the box filter applied twice, at the 64 decimation points; and each row's non-zero span."""
    full = _window(length)
    rows = np.zeros((SIDE, length), dtype=np.float64)
    for i in range(SIDE):
        lo, hi = _box_span(int(((i + 0.5) * length) / SIDE), length, full)  # the second pass's window ...
        for c in range(lo, hi):  # ... averages first-pass outputs, each itself a window average
            clo, chi = _box_span(c, length, full)
            rows[i, clo:chi] += 1.0 / ((hi - lo) * (chi - clo))
    nonzero = rows != 0
    spans = tuple((int(np.argmax(r)), int(length - np.argmax(r[::-1]))) for r in nonzero)
    return rows.astype(np.float32), spans


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """The reference's 16 × 64 DCT rows 1…16 (the DC row is left out)."""
    i = np.arange(1, 17)[:, None]
    j = np.arange(SIDE)[None, :]
    return (np.sqrt(2.0 / SIDE) * np.cos((np.pi / 2 / SIDE) * i * (2 * j + 1))).astype(np.float32)


def _bits(coefficients: np.ndarray) -> bytes:
    """16 × 16 DCT coefficients → 32 bytes: one bit per coefficient above the (lower) median."""
    flat = coefficients.ravel()  # row-major like the reference
    median = np.sort(flat)[127]  # Torben's median of 256 values is the lower one
    # The reference numbers bit k = 16·i + j from the least significant end; PdqHash is most significant first.
    return np.packbits((flat > median).astype(np.uint8)[::-1]).tobytes()


@lru_cache(maxsize=1)
def _parity() -> tuple[np.ndarray, np.ndarray]:
    """Sign masks: buffer row/column ``i`` holds DCT frequency ``i + 1``, and mirroring an axis negates its odd
    frequencies (cos((2(63 - j) + 1)·f·π/128) = (−1)^f · cos((2j + 1)·f·π/128)), i.e. the even indices."""
    sign = np.where(np.arange(16) % 2 == 0, -1.0, 1.0).astype(np.float32)
    return sign[:, None] * np.ones((1, 16), np.float32), np.ones((16, 1), np.float32) * sign[None, :]


def dihedral_coefficients(coefficients: np.ndarray) -> list[np.ndarray]:
    """The DCT of the image's 7 other dihedral transforms, from its own DCT alone (no re-filtering): mirroring
    negates odd frequencies along that axis, a transpose transposes the matrix; the rest are compositions."""
    flip_rows, flip_cols = _parity()  # vertical mirror (rows reversed), horizontal mirror (columns reversed)
    c = coefficients
    return [
        c * flip_cols,
        c * flip_rows,
        c * flip_rows * flip_cols,  # mirror left-right, top-bottom, rotate 180
        c.T,
        (c * flip_rows * flip_cols).T,  # transpose, anti-transpose
        (c * flip_rows).T,
        (c * flip_cols).T,
    ]  # rotate 90 one way and the other


def hash_from_small(small: np.ndarray) -> PdqHash:
    """64 × 64 filtered luma → the hash (DCT, median threshold) with its dihedral variants, and quality."""
    dct = dct_matrix()
    coefficients = dct @ small @ dct.T  # 16 × 16
    return PdqHash(
        _bits(coefficients),
        _quality(small),
        tuple(_bits(variant) for variant in dihedral_coefficients(coefficients)),
    )


def _quality(small: np.ndarray) -> int:
    # The reference truncates each scaled difference to an int before summing.
    vertical = np.abs(np.trunc((small[:-1, :] - small[1:, :]) * 100 / 255)).sum()
    horizontal = np.abs(np.trunc((small[:, :-1] - small[:, 1:]) * 100 / 255)).sum()
    return min(100, int(vertical + horizontal) // 90)


def compute_pdq(image: Image.Image) -> PdqHash:
    rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    luma = rgb.astype(np.float32) @ LUMA
    height, width = luma.shape
    rows, row_spans = sampled_filter(height)
    cols, _ = sampled_filter(width)
    filtered = np.empty((SIDE, width), dtype=np.float32)
    for i, (lo, hi) in enumerate(row_spans):  # banded: each output row reads only its own band of pixels
        filtered[i] = rows[i, lo:hi] @ luma[lo:hi]
    return hash_from_small(filtered @ cols.T)


class PdqIndex:
    """Exact Hamming search over 256-bit hashes (a binary flat scan is ~1 ms per million hashes)."""

    def __init__(self) -> None:
        import faiss  # here, not at import: CPU worker processes hash images without loading FAISS

        self._index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(PDQ_BITS))
        self._ids: set[int] = set()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: list[int], hashes: list[PdqHash]) -> None:
        """Add usable hashes (low-quality ones are skipped); re-adding an id replaces it."""
        keep = [(i, h) for i, h in zip(ids, hashes) if h.usable]
        with self._lock:
            self.remove([i for i, _ in keep])
            if keep:
                codes = np.frombuffer(b"".join(h.bits for _, h in keep), dtype=np.uint8).reshape(
                    len(keep), PDQ_BITS // 8
                )
                self._index.add_with_ids(codes, np.array([i for i, _ in keep], dtype=np.int64))
                self._ids.update(i for i, _ in keep)

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            present = [i for i in ids if i in self._ids]
            if present:
                self._index.remove_ids(np.array(present, dtype=np.int64))
                self._ids.difference_update(present)

    def search(
        self, query: PdqHash, k: int = 10, max_distance: int = DEFAULT_MAX_DISTANCE
    ) -> list[tuple[int, int]]:
        """``(reference_id, distance)`` within ``max_distance``, nearest first; nothing for an unusable query."""
        if not query.usable:
            return []
        with self._lock:
            if not self._ids:
                return []
            # The query as uploaded and, where it was hashed here, rotated and mirrored: one scan for all 8.
            codes = np.frombuffer(b"".join((query.bits, *query.variants)), dtype=np.uint8).reshape(
                -1, PDQ_BITS // 8
            )
            distances, ids = self._index.search(codes, min(k, len(self._ids)))
        best: dict[int, int] = {}
        for row_distances, row_ids in zip(distances, ids):
            for d, i in zip(row_distances, row_ids):
                if i >= 0 and d <= max_distance and d < best.get(int(i), PDQ_BITS + 1):
                    best[int(i)] = int(d)
        return sorted(best.items(), key=lambda item: (item[1], item[0]))[:k]
