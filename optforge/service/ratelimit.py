"""A token-bucket rate limit per API token (pyrate-limiter's TokenBucket, one bucket per key).

In-memory and per process: a service behind a load balancer with N replicas lets a token through N
times the rate, which still stops the runaway loop this is for.
"""

from __future__ import annotations

import math
import threading

from pyrate_limiter import BucketFactory, Duration, Limiter, Rate, RateItem, StateBucket, TokenBucket


class _BucketPerKey(BucketFactory):
    """Routes each key (``RateItem.name``) to its own constant-size token bucket."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.buckets: dict[str, StateBucket] = {}
        self._lock = threading.Lock()

    def wrap_item(self, name: str, weight: int = 1) -> RateItem:
        return RateItem(name, self._bucket(name).now(), weight=weight)

    def get(self, item: RateItem) -> StateBucket:
        return self._bucket(item.name)

    def _bucket(self, key: str) -> StateBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            with self._lock:
                # StateBucket keeps two numbers and needs no leaking, so no Leaker thread is scheduled.
                bucket = self.buckets.setdefault(key, StateBucket([self.rate], algorithm=TokenBucket()))
        return bucket

    def owned_buckets(self) -> list[StateBucket]:  # type: ignore[override]
        return list(self.buckets.values())


class RateLimiter:
    """``allow(key)`` spends one request of ``key``'s budget: ``per_minute`` sustained, ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.per_minute = per_minute
        self._limiter = Limiter(_BucketPerKey(Rate(per_minute, Duration.MINUTE, burst=burst)))

    def allow(self, key: str) -> bool:
        return bool(self._limiter.try_acquire(name=key, blocking=False))

    def retry_after_s(self) -> int:
        """Seconds until one more request fits (one token's refill time, rounded up)."""
        return max(1, math.ceil(60 / self.per_minute))

    def close(self) -> None:
        self._limiter.bucket_factory.close()
