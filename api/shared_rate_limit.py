"""Rate-limit buckets shared by every API process, kept in PostgreSQL.

Why PostgreSQL rather than a gateway or another store: the service already depends on
it and nothing else, every API process holds a pool to it, and the bucket is one row
updated by one statement (``db.rate_limits``): no extra server to run, and the limit
holds whichever process or how many serve a user. The cost is that statement per
authenticated request (measured: ``bench/rate_limit_cost.py``), on a small pool of
autocommit connections of its own, so the row is locked for the statement alone and
never for the request's own transaction, and the statement is one round trip (no
BEGIN, COMMIT or pre-ping). ``BOOKING_RATE_LIMIT_SCOPE=process`` switches it off for
deployments whose gateway limits every user in front of all the API processes.

The table is UNLOGGED and a full bucket is the same as no row, so a periodic sweep
(one process at a time) deletes the rows that have filled up again: the table holds
at most the users active within the last burst's refill time plus a sweep interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from datetime import timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.rate_limit import Limit, refusal
from core.vocabulary import CallKind
from db import rate_limits

logger = logging.getLogger(__name__)

SWEEP_BATCH = 5000


class SharedRateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        """``engine``: autocommit connections of the limiter's own
        (``db.engine.create_autocommit_engine``): the statement is one round trip, and
        a burst of requests never waits for the requests' pool."""
        self._engine = engine

    async def check(self, user_id: uuid.UUID, kind: CallKind, limit: Limit) -> None:
        """Take one request from the user's shared bucket or raise ``RateLimited``.

        A refusal waits at most one interval for the next free place (the bucket
        holds ``burst - 1`` ahead when it refuses), so ``Retry-After`` is that."""
        if not limit.enabled:
            return
        interval = timedelta(seconds=limit.interval)
        try:
            granted = await self._spend(user_id, kind, interval, limit.burst)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # The pooled connection was gone (a restart, a failover): once more on a
            # fresh one. Had the lost statement committed, the user paid twice, once.
            granted = await self._spend(user_id, kind, interval, limit.burst)
        if not granted:
            raise refusal(kind, max(1, math.ceil(limit.interval)))

    async def _spend(
        self, user_id: uuid.UUID, kind: CallKind, interval: timedelta, burst: int
    ) -> bool:
        async with self._engine.connect() as connection:
            return await rate_limits.spend(
                connection, user_id=user_id, kind=kind, interval=interval, burst=burst
            )

    async def aclose(self) -> None:
        await self._engine.dispose()


async def sweep_once(session_factory: async_sessionmaker[AsyncSession]) -> int:
    """Delete the full buckets, a batch per transaction; how many went."""
    swept = 0
    while True:
        async with session_factory() as session, session.begin():
            deleted = await rate_limits.sweep_full_buckets(session, batch_size=SWEEP_BATCH)
        if deleted is None:
            return swept  # another process is at it
        swept += deleted
        if deleted < SWEEP_BATCH:
            return swept


async def run_bucket_sweeper(
    session_factory: async_sessionmaker[AsyncSession], interval: timedelta, stop: asyncio.Event
) -> None:
    """Sweep every ``interval`` until ``stop`` is set; a failed round is logged and
    the next one catches up (a bucket left behind costs a row, nothing else)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval.total_seconds())
        if stop.is_set():
            return
        try:
            swept = await sweep_once(session_factory)
        except Exception:
            logger.exception("sweeping the shared rate-limit buckets failed")
            continue
        if swept:
            logger.debug("deleted %d full rate-limit buckets", swept)
