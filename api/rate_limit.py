"""Per-user rate limits: a token bucket per (user, kind of call), held by each API process.

Reads and writes have separate buckets, so a client polling for status cannot starve
its own submissions. The buckets live in memory: with several API processes each
enforces the limit on its own share of the traffic, which bounds abuse without a
shared store (a gateway can enforce a global limit in front if needed).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from api.errors import RateLimited

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED_BUCKETS = 100_000


class CallKind(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` tokens per second refill a bucket of ``burst``; 0 disables the limit."""

    rate: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0


class RateLimiter:
    def __init__(self, read: Limit, write: Limit) -> None:
        self._limits = {CallKind.READ: read, CallKind.WRITE: write}
        # Least recently used first, so the oldest idle buckets are dropped first.
        self._buckets: OrderedDict[tuple[uuid.UUID, CallKind], _Bucket] = OrderedDict()

    @staticmethod
    def kind_of(method: str) -> CallKind:
        return CallKind.READ if method.upper() in SAFE_METHODS else CallKind.WRITE

    def check(self, user_id: uuid.UUID, kind: CallKind, now: float | None = None) -> None:
        """Take one token or raise ``RateLimited`` with the wait in ``Retry-After``."""
        limit = self._limits[kind]
        if not limit.enabled:
            return
        now = time.monotonic() if now is None else now
        key = (user_id, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(limit.burst), updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_TRACKED_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - bucket.tokens) / limit.rate))
        raise RateLimited(
            f"Too many {kind.value} requests; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            retry_after_seconds=retry_after,
        )
