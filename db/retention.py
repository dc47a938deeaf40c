"""Retention: removing, in bounded batches, what has been kept long enough.

Each call handles at most ``batch_size`` rows in the caller's (short) transaction.
The rows are picked with ``FOR UPDATE SKIP LOCKED``: a row some booking, dispatcher
or operator holds right now is left for the next batch instead of waited for, and
the sweep only ever touches rows that are finished (final requests and sessions,
delivered or parked deliveries), which nothing else changes any more. So a sweep
neither waits on the live system nor makes it wait longer than one batch's commit.

What is due, per kind (``older_than`` is now minus that kind's setting):

- webhook deliveries: succeeded or parked, last changed before ``older_than``;
- delivered events: occurred before ``older_than``, already fanned out to the
  subscriptions, none of their deliveries still pending or in flight, and their
  request (if any) finished; their remaining deliveries go with them (cascade);
- inbound events: the remembered ids of meeting-platform events received before;
- request details: the free text of requests finished before (the row stays);
- meeting links: the join URL of sessions that ended (or were cancelled) before;
- exports: personal data exports requested before, with their parts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import Executable, Select, delete, exists, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import (
    FINAL_REQUEST_STATUSES,
    DeliveryStatus,
    RetentionKind,
    SessionStatus,
)
from db.models import (
    ConsultationRequest,
    DomainEvent,
    InboundWebhookEvent,
    PersonalDataExport,
    ScheduledSession,
    WebhookDelivery,
    WebhookFanoutCursor,
)

FINISHED_DELIVERIES = (DeliveryStatus.SUCCEEDED.value, DeliveryStatus.PARKED.value)
UNFINISHED_DELIVERIES = (DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERING.value)
FINAL_REQUESTS = tuple(sorted(status.value for status in FINAL_REQUEST_STATUSES))
CLOSED_SESSIONS = tuple(
    sorted(
        status.value
        for status in SessionStatus
        if status not in (SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS)
    )
)

SWEEP_LOCK_TIMEOUT = "1s"
"""The longest one sweep statement waits for a lock (say a cascade reaching a delivery
an operator is redelivering) before it gives up; the batch is retried later."""


async def bound_lock_waits(session: AsyncSession) -> None:
    """For the caller's transaction: never wait long for a lock."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{SWEEP_LOCK_TIMEOUT}'"))


def _due_deliveries(older_than: datetime, limit: int) -> Select[uuid.UUID]:
    return (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status.in_(FINISHED_DELIVERIES),
            WebhookDelivery.updated_at < older_than,
        )
        .order_by(WebhookDelivery.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _due_events(older_than: datetime, limit: int) -> Select[uuid.UUID]:
    event = DomainEvent
    # The fan-out cursor is a single row (CHECK id = 1); before the first fan-out
    # there is none, and no event has been fanned out.
    last_transaction = select(WebhookFanoutCursor.last_transaction_id).scalar_subquery()
    last_sequence = select(WebhookFanoutCursor.last_sequence).scalar_subquery()
    fanned_out = tuple_(event.transaction_id, event.sequence) <= tuple_(
        func.coalesce(last_transaction, 0), func.coalesce(last_sequence, 0)
    )
    undelivered = exists().where(
        WebhookDelivery.event_id == event.id, WebhookDelivery.status.in_(UNFINISHED_DELIVERIES)
    )
    open_request = exists().where(
        ConsultationRequest.id == event.consultation_request_id,
        ConsultationRequest.status.not_in(FINAL_REQUESTS),
    )
    return (
        select(event.id)
        .where(event.occurred_at < older_than, fanned_out, ~undelivered, ~open_request)
        .order_by(event.occurred_at)
        .limit(limit)
        .with_for_update(of=event, skip_locked=True)
    )


def _due_inbound_events(older_than: datetime, limit: int) -> Select[uuid.UUID]:
    return (
        select(InboundWebhookEvent.id)
        .where(InboundWebhookEvent.received_at < older_than)
        .order_by(InboundWebhookEvent.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _due_request_details(older_than: datetime, limit: int) -> Select[uuid.UUID]:
    request = ConsultationRequest
    return (
        select(request.id)
        .where(
            request.request_details.is_not(None),
            request.status.in_(FINAL_REQUESTS),
            request.updated_at < older_than,
        )
        .order_by(request.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _due_meeting_links(older_than: datetime, limit: int) -> Select[uuid.UUID]:
    session_row = ScheduledSession
    return (
        select(session_row.id)
        .where(
            session_row.meeting_platform_join_url.is_not(None),
            session_row.status.in_(CLOSED_SESSIONS),
            session_row.updated_at < older_than,
        )
        .order_by(session_row.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def _count(session: AsyncSession, statement: Executable) -> int:
    """Run a ``... RETURNING id`` statement; how many rows it changed."""
    return len((await session.execute(statement)).all())


async def _sweep_deliveries(session: AsyncSession, older_than: datetime, limit: int) -> int:
    due = _due_deliveries(older_than, limit).scalar_subquery()
    return await _count(
        session,
        delete(WebhookDelivery).where(WebhookDelivery.id.in_(due)).returning(WebhookDelivery.id),
    )


async def _sweep_events(session: AsyncSession, older_than: datetime, limit: int) -> int:
    due = _due_events(older_than, limit).scalar_subquery()
    return await _count(
        session, delete(DomainEvent).where(DomainEvent.id.in_(due)).returning(DomainEvent.id)
    )


async def _sweep_inbound_events(session: AsyncSession, older_than: datetime, limit: int) -> int:
    due = _due_inbound_events(older_than, limit).scalar_subquery()
    return await _count(
        session,
        delete(InboundWebhookEvent)
        .where(InboundWebhookEvent.id.in_(due))
        .returning(InboundWebhookEvent.id),
    )


async def _sweep_request_details(session: AsyncSession, older_than: datetime, limit: int) -> int:
    due = _due_request_details(older_than, limit).scalar_subquery()
    return await _count(
        session,
        update(ConsultationRequest)
        .where(ConsultationRequest.id.in_(due))
        .values(request_details=None)
        .returning(ConsultationRequest.id),
    )


async def _sweep_meeting_links(session: AsyncSession, older_than: datetime, limit: int) -> int:
    due = _due_meeting_links(older_than, limit).scalar_subquery()
    return await _count(
        session,
        update(ScheduledSession)
        .where(ScheduledSession.id.in_(due))
        .values(meeting_platform_join_url=None)
        .returning(ScheduledSession.id),
    )


def _due_exports(older_than: datetime, limit: int) -> Select[uuid.UUID]:
    return (
        select(PersonalDataExport.id)
        .where(PersonalDataExport.requested_at < older_than)
        .order_by(PersonalDataExport.requested_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def _sweep_exports(session: AsyncSession, older_than: datetime, limit: int) -> int:
    due = _due_exports(older_than, limit).scalar_subquery()
    return await _count(
        session,
        delete(PersonalDataExport)
        .where(PersonalDataExport.id.in_(due))
        .returning(PersonalDataExport.id),
    )


Sweep = Callable[[AsyncSession, datetime, int], Awaitable[int]]

SWEEPS: dict[RetentionKind, Sweep] = {
    RetentionKind.WEBHOOK_DELIVERIES: _sweep_deliveries,
    RetentionKind.DELIVERED_EVENTS: _sweep_events,
    RetentionKind.INBOUND_EVENTS: _sweep_inbound_events,
    RetentionKind.REQUEST_DETAILS: _sweep_request_details,
    RetentionKind.MEETING_LINKS: _sweep_meeting_links,
    RetentionKind.EXPORTS: _sweep_exports,
}


async def sweep_batch(
    session: AsyncSession, kind: RetentionKind, *, older_than: datetime, batch_size: int
) -> int:
    """Remove (or clear) at most ``batch_size`` due rows of ``kind``; how many it did."""
    await bound_lock_waits(session)
    return await SWEEPS[kind](session, older_than, batch_size)
