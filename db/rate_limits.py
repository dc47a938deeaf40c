"""The shared rate-limit buckets: one statement to spend from one, one to sweep them.

A bucket is the generic cell rate algorithm's single timestamp per user and kind of
call, the *theoretical arrival time* (TAT): when the bucket would be full again. With
``interval = 1 / rate``, a request at ``now`` is granted when

    greatest(TAT, now) + interval <= now + burst * interval

and then moves the TAT to the left side. That is a token bucket of ``burst`` tokens
refilled at ``rate``: over any stretch of time a user is granted at most
``burst + rate * elapsed`` requests. Granting and refusing is one
``INSERT … ON CONFLICT … DO UPDATE … WHERE`` on the user's row: the row lock orders
concurrent requests of one user (from any API process), each sees what the one before
it wrote, and ``now()`` is the database's clock, the one clock every process shares.
A refused request changes nothing and returns no row.

These statements are meant for a connection in autocommit mode: each is its own
transaction, so the row lock is held for the statement only, never for the rest of
the caller's request.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Interval, Uuid, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.vocabulary import CallKind

# An arbitrary constant naming the sweep's advisory lock, so that one API process at a
# time deletes (the others skip their turn rather than queue behind it).
SWEEP_LOCK_KEY = 0x5241_5445_4C49_4D31  # "RATELIM1"

_SPEND = text(
    """
    INSERT INTO rate_limit_buckets AS bucket (user_id, kind, theoretical_arrival)
    VALUES (:user_id, :kind, now() + :interval)
    ON CONFLICT (user_id, kind) DO UPDATE
        SET theoretical_arrival = greatest(bucket.theoretical_arrival, now()) + :interval
        WHERE greatest(bucket.theoretical_arrival, now()) + :interval <= now() + :tolerance
    RETURNING 1
    """
).bindparams(
    bindparam("user_id", type_=Uuid()),
    bindparam("interval", type_=Interval()),
    bindparam("tolerance", type_=Interval()),
)

# Full buckets (their time has passed) are the same as no row. Rows locked by a request
# spending from them right now are left for the next sweep.
_SWEEP_BATCH = text(
    """
    DELETE FROM rate_limit_buckets
    WHERE (user_id, kind) IN (
        SELECT user_id, kind FROM rate_limit_buckets
        WHERE theoretical_arrival < now()
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    """
)


async def spend(
    connection: AsyncConnection,
    *,
    user_id: uuid.UUID,
    kind: CallKind,
    interval: timedelta,
    burst: int,
) -> bool:
    """Take one request from the user's bucket; ``False`` when it is empty.

    ``burst`` is at least 1 (a first request of a user is always granted)."""
    result = await connection.execute(
        _SPEND,
        {
            "user_id": user_id,
            "kind": kind.value,
            "interval": interval,
            "tolerance": interval * burst,
        },
    )
    return result.first() is not None


async def sweep_full_buckets(session: AsyncSession, *, batch_size: int) -> int | None:
    """Delete up to ``batch_size`` full buckets in the caller's transaction; ``None``
    when another process is sweeping (this one then leaves it to that one)."""
    locked = await session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY)))
    if not locked:
        return None
    result = await session.execute(_SWEEP_BATCH, {"limit": batch_size})
    return int(getattr(result, "rowcount", 0) or 0)
