"""Per-key token buckets: each API key may make ``rate`` requests a second, bursting to ``burst``.

Buckets live in the process; with several replicas each enforces the limit on its own share of
the traffic (a load balancer spreading a key over N replicas allows up to N × the rate).
"""
from __future__ import annotations

import threading
import time


class TokenBuckets:
    def __init__(self, max_keys: int = 100_000):
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated at)
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def take(self, key: str, rate: float, burst: float) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until a token is there."""
        if rate <= 0:
            return 0.0  # unlimited
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - updated) * rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / rate
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory: forgetting buckets only ever allows more
            self._buckets[key] = (tokens - 1, now)
            return 0.0
