"""Crash-safe file replacement, the one place it is written: a temp file beside the target, fsync,
rename over the target, fsync of the directory. A crash leaves the old file or the new one, never
a torn one; without ``durable`` the rename is still atomic but may be lost on power failure."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path, mode: str = "wb", durable: bool = True) -> Iterator[IO]:
    """Write through the yielded handle; the target is replaced only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def write_atomic(path: Path, data: bytes | str, durable: bool = True) -> None:
    with atomic_writer(path, "w" if isinstance(data, str) else "wb", durable) as handle:
        handle.write(data)
