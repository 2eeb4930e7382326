"""PDQ perceptual hashes (Meta's ThreatExchange algorithm, via the ``pdqhash`` package) and a
FAISS binary index to find references within a Hamming distance.

PDQ catches what CLIP is too semantic for: a re-upload of a known-fake listing photo (resized,
re-compressed, lightly cropped or watermarked) stays within a small Hamming distance, while a
genuine product photographed differently does not. Following the PDQ documentation, matches are
within 31 bits of 256 and hashes with quality below 50 (flat, featureless images) are ignored.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

PDQ_BITS = 256
DEFAULT_MAX_DISTANCE = 31
MIN_QUALITY = 50


@dataclass(frozen=True)
class PdqHash:
    bits: bytes  # 32 bytes, most significant bit first
    quality: int  # 0..100

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
        return int(np.unpackbits(np.frombuffer(bytes(a ^ b for a, b in zip(self.bits, other.bits)), dtype=np.uint8)).sum())


def compute_pdq(image: Image.Image) -> PdqHash:
    import pdqhash

    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return PdqHash(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))


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
                codes = np.frombuffer(b"".join(h.bits for _, h in keep), dtype=np.uint8).reshape(len(keep), PDQ_BITS // 8)
                self._index.add_with_ids(codes, np.array([i for i, _ in keep], dtype=np.int64))
                self._ids.update(i for i, _ in keep)

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            present = [i for i in ids if i in self._ids]
            if present:
                self._index.remove_ids(np.array(present, dtype=np.int64))
                self._ids.difference_update(present)

    def search(self, query: PdqHash, k: int = 10, max_distance: int = DEFAULT_MAX_DISTANCE) -> list[tuple[int, int]]:
        """``(reference_id, distance)`` within ``max_distance``, nearest first; nothing for an unusable query."""
        if not query.usable:
            return []
        with self._lock:
            if not self._ids:
                return []
            codes = np.frombuffer(query.bits, dtype=np.uint8).reshape(1, -1)
            distances, ids = self._index.search(codes, min(k, len(self._ids)))
        return [(int(i), int(d)) for d, i in zip(distances[0], ids[0]) if i >= 0 and d <= max_distance]
