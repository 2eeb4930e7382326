"""Give decode memory back to the operating system after each request.

glibc raises its mmap threshold each time a large mmapped block is freed, so after the first big
image every later one is carved from the heap, and freed heap memory stays in the process: RSS
ratchets up to the worst concurrent peak and stays there. Pinning the threshold keeps large
allocations (image planes, arrays) on their own mappings, which ``free`` unmaps at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from <malloc.h>
M_TRIM_THRESHOLD = -1
LARGE_ALLOCATION = 1 << 20


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None  # glibc only


def return_large_allocations_to_os() -> bool:
    """True where the allocator was tuned (glibc); elsewhere nothing to do."""
    libc = _libc()
    if libc is None:
        return False
    ok = (
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION) == 1
        and libc.mallopt(M_TRIM_THRESHOLD, 4 * LARGE_ALLOCATION) == 1
    )
    if not ok:
        log.warning("mallopt refused; decode memory may not be returned to the OS")
    return ok
