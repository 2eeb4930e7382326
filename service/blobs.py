"""Content-addressed image store: ``<root>/ab/cd/<sha256>``, written atomically."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Iterator

from index.atomic import write_atomic


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes, durable: bool = True) -> str:
        """Store ``data`` (temp file, rename; with ``durable`` also fsync file and dir); returns its sha256."""
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if path.exists():
            return digest
        write_atomic(path, data, durable)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def older_than(self, seconds: float) -> Iterator[str]:
        """Digests of the stored blobs last written more than ``seconds`` ago (temp files are skipped)."""
        cutoff = time.time() - seconds
        for path in self.root.glob("??/??/*"):
            if len(path.name) == 64 and path.is_file() and path.stat().st_mtime < cutoff:
                yield path.name
