"""Per-key token buckets: each API key may make ``rate`` requests a second, bursting to ``burst``.

On PostgreSQL the buckets are rows every replica shares (:class:`SharedTokenBuckets`: one atomic
statement a request, timed by the database's clock), so N replicas behind a load balancer still allow
the key its rate, not N × it. On SQLite (one host, usually one process) they live in the process.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, text

# Refill, spend if a whole token is there, and say whether it was: one statement, one round trip, atomic per key.
_TAKE = text("""
INSERT INTO rate_buckets AS b (key, tokens, updated, allowed)
VALUES (:key, :burst - 1, EXTRACT(EPOCH FROM clock_timestamp()), true)
ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST(:burst, b.tokens + (EXTRACT(EPOCH FROM clock_timestamp()) - b.updated) * :rate)
             - CASE WHEN LEAST(:burst, b.tokens + (EXTRACT(EPOCH FROM clock_timestamp()) - b.updated) * :rate) >= 1
                    THEN 1 ELSE 0 END,
    updated = EXTRACT(EPOCH FROM clock_timestamp()),
    allowed = LEAST(:burst, b.tokens + (EXTRACT(EPOCH FROM clock_timestamp()) - b.updated) * :rate) >= 1
RETURNING tokens, allowed
""")


class SharedTokenBuckets:
    """Token buckets in PostgreSQL (table ``rate_buckets``), shared by every replica."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def take(self, key: str, rate: float, burst: float) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until a token is there."""
        if rate <= 0:
            return 0.0  # unlimited
        with self.engine.begin() as connection:
            tokens, allowed = connection.execute(_TAKE, {"key": key, "rate": rate, "burst": burst}).one()
        return 0.0 if allowed else (1 - tokens) / rate


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
