"""Fan-out: turn newly settled domain events into one delivery per matching subscription.

A stored cursor (``webhook_fanout_cursor``) records how far events have been fanned
out, in the feed's order, so a later-committing event is never passed over (see
``db.event_feed``). One fan-out runs at a time across all worker processes.
"""

from __future__ import annotations

import logging

from sqlalchemy import and_, any_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.event_feed import FeedPosition, settled_events_after
from db.models import DomainEvent, WebhookDelivery, WebhookFanoutCursor, WebhookSubscription

logger = logging.getLogger(__name__)

CURSOR_ROW_ID = 1
# An arbitrary constant naming the fan-out's advisory lock. An advisory lock rather
# than ``SELECT ... FOR UPDATE`` on the cursor row: trying it takes no transaction id
# and writes nothing, which matters for a step that runs every second while idle.
FANOUT_LOCK_KEY = 0x5745_4248_4F4F_4B31  # "WEBHOOK1"
FANOUT_BATCH = 500
"""Events one fan-out round reads at most: a full batch means more may be waiting."""


async def _position(session: AsyncSession) -> FeedPosition:
    cursor = await session.get(WebhookFanoutCursor, CURSOR_ROW_ID)
    if cursor is None:
        return FeedPosition()
    return FeedPosition(cursor.last_transaction_id, cursor.last_sequence)


async def _save_position(session: AsyncSession, position: FeedPosition) -> None:
    statement = pg_insert(WebhookFanoutCursor).values(
        id=CURSOR_ROW_ID,
        last_transaction_id=position.transaction_id,
        last_sequence=position.sequence,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[WebhookFanoutCursor.id],
            set_={
                "last_transaction_id": statement.excluded.last_transaction_id,
                "last_sequence": statement.excluded.last_sequence,
            },
        )
    )


async def fan_out(
    session_factory: async_sessionmaker[AsyncSession], *, batch_size: int = FANOUT_BATCH
) -> int:
    """Fan out one batch; returns how many events it consumed (0: nothing new, or busy)."""
    async with session_factory() as session, session.begin():
        locked = await session.scalar(select(func.pg_try_advisory_xact_lock(FANOUT_LOCK_KEY)))
        if not locked:
            return 0  # another dispatcher is fanning out; it will cover these events
        events = list(
            (
                await session.scalars(
                    settled_events_after(await _position(session), limit=batch_size)
                )
            ).all()
        )
        if not events:
            return 0
        event_ids = [event.id for event in events]
        matching = (
            select(
                WebhookSubscription.id,
                DomainEvent.id,
                DomainEvent.sequence,
                DomainEvent.consultation_request_id,
            )
            .select_from(DomainEvent)
            .join(
                WebhookSubscription,
                and_(
                    WebhookSubscription.is_enabled,
                    or_(
                        func.cardinality(WebhookSubscription.event_types) == 0,
                        DomainEvent.event_type == any_(WebhookSubscription.event_types),
                    ),
                ),
            )
            .where(DomainEvent.id.in_(event_ids))
        )
        await session.execute(
            pg_insert(WebhookDelivery)
            .from_select(
                ["subscription_id", "event_id", "event_sequence", "consultation_request_id"],
                matching,
            )
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
        )
        await _save_position(session, FeedPosition.of(events[-1]))
    logger.debug("fanned out %d events", len(events))
    return len(events)
