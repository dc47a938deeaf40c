"""Per-user rate limits: a token bucket per (user, kind of call).

Reads and writes have separate buckets, so a client polling for status cannot starve
its own submissions. ``RateLimiter`` keeps the buckets of one API process in memory;
``RateLimits`` is what a request spends from: that process's buckets first, then,
with ``BOOKING_RATE_LIMIT_SCOPE=global``, the buckets every API process shares
(``api.shared_rate_limit``). The process's own buckets have the same limits, so they
refuse only a user who is over the limit on this process's share of the traffic
alone, clearly over it, and then without a database round trip.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.errors import RateLimited
from core.vocabulary import CallKind

if TYPE_CHECKING:
    from api.metrics import RateLimitMetrics
    from api.shared_rate_limit import SharedRateLimiter

__all__ = ["CallKind", "Limit", "RateLimiter", "RateLimits", "refusal"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED_BUCKETS = 100_000


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

    @property
    def interval(self) -> float:
        """Seconds between two requests at the sustained rate."""
        return 1.0 / self.rate


def refusal(kind: CallKind, retry_after: int) -> RateLimited:
    """The 429 problem, the same whichever bucket refused."""
    return RateLimited(
        f"Too many {kind.value} requests; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
        retry_after_seconds=retry_after,
    )


class RateLimiter:
    """The buckets of this process, least recently used dropped past a bound."""

    def __init__(self, read: Limit, write: Limit) -> None:
        self._limits = {CallKind.READ: read, CallKind.WRITE: write}
        # Least recently used first, so the oldest idle buckets are dropped first.
        self._buckets: OrderedDict[tuple[uuid.UUID, CallKind], _Bucket] = OrderedDict()

    @staticmethod
    def kind_of(method: str) -> CallKind:
        return CallKind.READ if method.upper() in SAFE_METHODS else CallKind.WRITE

    def limit(self, kind: CallKind) -> Limit:
        return self._limits[kind]

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
        raise refusal(kind, max(1, math.ceil((1.0 - bucket.tokens) / limit.rate)))


class RateLimits:
    """What one authenticated request spends: this process's bucket, then the shared
    one (``shared`` is ``None`` with ``BOOKING_RATE_LIMIT_SCOPE=process``)."""

    def __init__(
        self,
        local: RateLimiter,
        shared: SharedRateLimiter | None = None,
        metrics: RateLimitMetrics | None = None,
    ) -> None:
        self.local = local
        self.shared = shared
        self._metrics = metrics

    async def spend(self, user_id: uuid.UUID, method: str) -> None:
        """Take one request from the user's budget or raise ``RateLimited``."""
        kind = self.local.kind_of(method)
        try:
            self.local.check(user_id, kind)
        except RateLimited:
            self._count_refusal(kind, "process")
            raise
        if self.shared is None:
            return
        try:
            await self.shared.check(user_id, kind, self.local.limit(kind))
        except RateLimited:
            self._count_refusal(kind, "global")
            raise

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()

    def _count_refusal(self, kind: CallKind, decided_by: str) -> None:
        if self._metrics is not None:
            self._metrics.refused(kind, decided_by)
