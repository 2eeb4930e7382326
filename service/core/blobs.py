"""Content-addressed image stores: a local directory (the embedded default) or an S3-compatible bucket.

Blobs are named by their sha256 (``ab/cd/<sha256>``), so every write is idempotent and any replica may
write the same bytes again. :class:`BlobStore` is a local directory, written atomically. :class:`S3BlobStore`
keeps the bytes in a bucket (``COUNTERFEIT_BLOB_URL=s3://bucket/prefix``, configured by the standard
``AWS_*`` variables: ``AWS_ENDPOINT_URL``, keys, region — S3, MinIO, R2 and GCS's interoperability all
speak it) and each replica's local directory is only a cache it can lose: code that reads blobs by path
(CPU workers, Ray actors) gets the cached file, fetched from the bucket when missing.

A store that cannot be reached answers :class:`BlobStoreUnavailable` (a 503 with Retry-After at the edge),
and since a blob is written before the row that names it commits, an outage loses nothing acknowledged.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from index.atomic import write_atomic
from service.core.errors import Busy


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_key(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


class BlobStoreUnavailable(Busy):
    def __init__(self, cause: Exception):
        super().__init__(
            "storage_unavailable",
            f"The image store cannot be reached ({type(cause).__name__}); retry shortly.",
            retry_after=5,
        )


class BlobStore:
    """Blobs in a local directory: ``<root>/ab/cd/<sha256>``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        return self.root / blob_key(digest)

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

    def share_file(self, name: str, path: Path) -> None:
        """Make a local file (an index snapshot) available to every replica under ``name``: a local directory
        is shared only by processes that share the disk, so there is nothing to do."""

    def fetch_file(self, name: str, path: Path) -> bool:
        """Copy what :meth:`share_file` shared under ``name`` to ``path``; False when there is nothing to fetch."""
        return False

    def older_than(self, seconds: float) -> Iterator[str]:
        """Digests of the stored blobs last written more than ``seconds`` ago (temp files are skipped)."""
        cutoff = time.time() - seconds
        for path in self.root.glob("??/??/*"):
            if len(path.name) == 64 and path.is_file() and path.stat().st_mtime < cutoff:
                yield path.name


class S3BlobStore(BlobStore):
    """Blobs in an S3-compatible bucket, with the local directory as this replica's cache."""

    def __init__(self, url: str, cache_root: Path):
        import boto3
        from botocore.config import Config

        super().__init__(cache_root)
        parts = urlsplit(url)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        # Short timeouts and few retries: an unreachable store answers 503 in seconds, not minutes.
        self.s3 = boto3.client(
            "s3",
            config=Config(
                connect_timeout=2, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"}
            ),
        )

    def _key(self, digest: str) -> str:
        return f"{self.prefix}/{blob_key(digest)}" if self.prefix else blob_key(digest)

    def _call(self, operation: str, **params):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.s3, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(params.get("Key")) from None
            raise BlobStoreUnavailable(exc) from exc
        except BotoCoreError as exc:  # no connection, timeouts
            raise BlobStoreUnavailable(exc) from exc

    def put(self, data: bytes, durable: bool = True) -> str:
        """Into the bucket (the acknowledged copy), then the local cache."""
        digest = sha256_hex(data)
        self._call("put_object", Key=self._key(digest), Body=data)
        super().put(data, durable=False)  # a cache: the bucket holds the durable copy
        return digest

    def path_for(self, digest: str) -> Path:
        """The cached file, fetched from the bucket first if this replica does not have it."""
        path = super().path_for(digest)
        if not path.exists():
            try:
                data = self._call("get_object", Key=self._key(digest))["Body"].read()
            except FileNotFoundError:
                return path  # no such blob: reading the path fails like a missing local file
            write_atomic(path, data, False)
        return path

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        if super().path_for(digest).exists():
            return True
        try:
            self._call("head_object", Key=self._key(digest))
            return True
        except FileNotFoundError:
            return False

    def delete(self, digest: str) -> None:
        self._call("delete_object", Key=self._key(digest))
        super().delete(digest)

    def _file_key(self, name: str) -> str:
        return f"{self.prefix}/files/{name}" if self.prefix else f"files/{name}"

    def share_file(self, name: str, path: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # multipart for large snapshots
            self.s3.upload_file(str(path), self.bucket, self._file_key(name))
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreUnavailable(exc) from exc

    def fetch_file(self, name: str, path: Path) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        partial = path.with_name(path.name + ".part")
        try:
            self.s3.download_file(self.bucket, self._file_key(name), str(partial))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise BlobStoreUnavailable(exc) from exc
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(exc) from exc
        partial.replace(path)
        return True

    def older_than(self, seconds: float) -> Iterator[str]:
        cutoff = datetime.fromtimestamp(time.time() - seconds, timezone.utc)
        token = None
        while True:
            page = self._call(
                "list_objects_v2",
                Prefix=f"{self.prefix}/" if self.prefix else "",  # files/: not 64 hex
                **({"ContinuationToken": token} if token else {}),
            )
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if len(name) == 64 and item["LastModified"] < cutoff:
                    yield name
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]


def open_blob_store(blob_url: str | None, local_dir: Path) -> BlobStore:
    """``COUNTERFEIT_BLOB_URL``: empty for the local directory, ``s3://bucket/prefix`` for a bucket (then the
    local directory is this replica's cache)."""
    if not blob_url:
        return BlobStore(local_dir)
    if not blob_url.startswith("s3://") or not urlsplit(blob_url).netloc:
        raise ValueError(f"COUNTERFEIT_BLOB_URL must be s3://bucket[/prefix] or empty, not {blob_url!r}")
    return S3BlobStore(blob_url, local_dir)
