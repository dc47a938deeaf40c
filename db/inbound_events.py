"""Inbound partner events (the meeting platform's): which session an event is about,
and the record that makes each event take effect once.

An event is recorded ``received`` in a short transaction of its own, passed on with
no transaction open, then marked ``delivered`` in another: a redelivery of a
``delivered`` event is a duplicate, one of a ``received`` event (passing it on
failed, or is under way) is passed on again.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import InboundEventState
from db.models import InboundWebhookEvent, ScheduledSession


class MeetingSession(NamedTuple):
    session_id: uuid.UUID
    request_id: uuid.UUID


async def session_for_meeting(session: AsyncSession, meeting_id: str) -> MeetingSession | None:
    """The session holding the platform's meeting (the newest, should one be reused)."""
    row = (
        await session.execute(
            select(ScheduledSession.id, ScheduledSession.consultation_request_id)
            .where(ScheduledSession.meeting_platform_session_id == meeting_id)
            .order_by(ScheduledSession.created_at.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else MeetingSession(row.id, row.consultation_request_id)


async def record_received(
    session: AsyncSession,
    *,
    source: str,
    external_id: str,
    event_type: str,
    session_id: uuid.UUID,
) -> InboundEventState:
    """Record the event unless it is known; returns its state (``received`` for a new one)."""
    table = InboundWebhookEvent
    await session.execute(
        insert(table)
        .values(
            source=source,
            external_id=external_id,
            event_type=event_type,
            scheduled_session_id=session_id,
            state=InboundEventState.RECEIVED.value,
        )
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
    )
    state = (
        await session.execute(
            select(table.state).where(table.source == source, table.external_id == external_id)
        )
    ).scalar_one()
    return InboundEventState(state)


async def mark_delivered(session: AsyncSession, *, source: str, external_id: str) -> None:
    table = InboundWebhookEvent
    await session.execute(
        update(table)
        .where(
            table.source == source,
            table.external_id == external_id,
            table.state == InboundEventState.RECEIVED.value,
        )
        .values(state=InboundEventState.DELIVERED.value, delivered_at=func.now())
    )
