"""Reading the outbox in an order that no reader can ever overtake.

A sequence number is drawn when an event row is inserted, but transactions commit
in any order. Transaction A may draw sequence 5, transaction B sequence 7, and B
commit first: a reader that returned 7 and moved its cursor past it would never see 5.
Filtering on "transaction_id below the snapshot's xmin" alone does not fix that:
B's id can be lower than A's (ids are taken at a transaction's first write, which
may come long before its event insert), so B's event passes the filter while A is
still open holding the smaller sequence.

What is safe is to order by ``(transaction_id, sequence)`` and return only rows whose
transaction is below ``pg_snapshot_xmin(pg_current_snapshot())``: every transaction
below xmin has ended, so that set of rows is final, and every transaction that could
still commit has an id at or above xmin, so it sorts after anything already returned.
Per consultation request the order is the order of transitions, because the workflow
runs them one after another: the next transition's transaction starts (and takes its
id) after the previous one committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, func, literal_column, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import DomainEvent

# Every transaction below it has committed or rolled back (``xid8`` as a bigint, like
# ``domain_events.transaction_id``). Evaluated once per statement, on its snapshot.
SETTLED_HORIZON: ColumnElement[int] = literal_column(
    "(pg_snapshot_xmin(pg_current_snapshot())::text)::bigint"
)


@dataclass(frozen=True, order=True, slots=True)
class FeedPosition:
    """Just after the event with this transaction id and sequence; (0, 0) is the start."""

    transaction_id: int = 0
    sequence: int = 0

    @classmethod
    def of(cls, event: DomainEvent) -> FeedPosition:
        return cls(event.transaction_id, event.sequence)


def settled_events_after(
    position: FeedPosition, *, limit: int, event_types: Collection[str] = ()
) -> Select[DomainEvent]:
    """Events past ``position`` whose transactions have all ended, in feed order."""
    query = (
        select(DomainEvent)
        .where(
            DomainEvent.transaction_id < SETTLED_HORIZON,
            tuple_(DomainEvent.transaction_id, DomainEvent.sequence)
            > tuple_(position.transaction_id, position.sequence),
        )
        .order_by(DomainEvent.transaction_id, DomainEvent.sequence)
        .limit(limit)
    )
    if event_types:
        query = query.where(DomainEvent.event_type.in_(sorted(event_types)))
    return query


class FeedLag(NamedTuple):
    """How far the feed (and the webhook fan-out, which reads it the same way) trails."""

    # Age of the oldest committed event not servable yet; 0 when none waits.
    unserved_event_seconds: float
    # Age of the oldest open transaction that has written: the feed serves nothing
    # committed after it began until it ends (0 when none is open).
    oldest_open_transaction_seconds: float


_OLDEST_WRITING_TRANSACTION_AGE = text(
    # ``backend_xid`` is set once a transaction has written: only those hold back the
    # snapshot's xmin. Transaction ids are cluster-wide, so any database's count.
    "SELECT extract(epoch FROM clock_timestamp() - min(xact_start)) "
    "FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
)


async def feed_lag(session: AsyncSession) -> FeedLag:
    now = func.clock_timestamp()
    unserved = await session.scalar(
        select(func.extract("epoch", now - func.min(DomainEvent.occurred_at))).where(
            DomainEvent.transaction_id >= SETTLED_HORIZON
        )
    )
    oldest = await session.scalar(_OLDEST_WRITING_TRANSACTION_AGE)
    return FeedLag(float(unserved or 0), float(oldest or 0))


class EventEnvelope(BaseModel):
    """An event as consumers see it, the same in the feed and in webhook bodies."""

    id: uuid.UUID = Field(description="Unique per event; also the `webhook-id` header.")
    type: str = Field(examples=["session.scheduled"])
    occurred_at: datetime
    schema_version: int = Field(description="Bumped when `data` changes incompatibly.")
    data: dict[str, Any] = Field(
        description="The event's payload plus `consultation_request_id` and `scheduled_session_id`."
    )

    @classmethod
    def of(cls, event: DomainEvent) -> EventEnvelope:
        data = dict(event.payload)
        # The row's own ids are authoritative over anything in the payload.
        data["consultation_request_id"] = (
            str(event.consultation_request_id) if event.consultation_request_id else None
        )
        data["scheduled_session_id"] = (
            str(event.scheduled_session_id) if event.scheduled_session_id else None
        )
        return cls(
            id=event.id,
            type=event.event_type,
            occurred_at=event.occurred_at,
            schema_version=event.schema_version,
            data=data,
        )
