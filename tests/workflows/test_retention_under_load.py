"""The retention sweep while bookings go on: it removes exactly what is due, batch by
batch, and no booking waits for a lock longer than a second.

Measured two ways: every booking transaction runs with ``lock_timeout = 1s`` (a longer
wait fails it, and so the test), and a sampler watches ``pg_stat_activity`` for
backends waiting on a lock and records the longest wait it saw.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.retention import RetentionActivities
from core.settings import Settings
from core.vocabulary import DeliveryStatus, RequestStatus, RetentionKind
from db.models import ConsultationRequest, DomainEvent, InboundWebhookEvent, WebhookDelivery
from tests.activities.builders import Backend, future
from tests.support.aged_rows import AgedRows, ago
from workflows.contracts.retention import RetentionPolicy
from workflows.retention import RetentionSweepWorkflow

SessionFactory = async_sessionmaker[AsyncSession]

DUE = 3000  # of each kind
KEPT = 50  # of each kind, too young to go
BATCH = 250
LONGEST_ALLOWED_WAIT = timedelta(seconds=1)

_LOCK_WAITS = text(
    """
    SELECT coalesce(max(clock_timestamp() - query_start), interval '0')
      FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'
    """
)


@pytest.fixture
async def booking_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Connections that give up on any lock held for more than a second."""
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"lock_timeout": "1000"}}
    )
    yield engine
    await engine.dispose()


async def _seed(aged: AgedRows) -> None:
    old, young = ago(days=400), ago(hours=1)
    finished = await aged.requests(DUE, status=RequestStatus.COMPLETED, updated=old)
    await aged.requests(KEPT, status=RequestStatus.COMPLETED, updated=young)
    events = await aged.events_of(finished, occurred=old)
    await aged.deliveries(events, status=DeliveryStatus.SUCCEEDED, updated=old)
    await aged.events(KEPT, occurred=young)
    await aged.fanned_out_up_to_now()
    await aged.inbound_events(DUE, received=old)
    await aged.inbound_events(KEPT, received=young)


async def _count(sessions: SessionFactory, *conditions: object) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).where(*conditions)) or 0)  # type: ignore[arg-type]


async def test_the_sweep_removes_what_is_due_while_bookings_never_wait_long(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    session_factory: SessionFactory,
    booking_engine: AsyncEngine,
) -> None:
    aged = AgedRows(session_factory)
    await _seed(aged)
    bookings = Backend(async_sessionmaker(booking_engine, expire_on_commit=False))
    service_type = await bookings.service_type()
    consultants = [await bookings.consultant() for _ in range(4)]
    starts = (future(days=20) + timedelta(hours=2 * n) for n in itertools.count())

    sweep_done = asyncio.Event()
    booked: list[uuid.UUID] = []
    longest_wait = timedelta(0)

    async def book_until_the_sweep_is_done(consultant: uuid.UUID) -> None:
        while not sweep_done.is_set():
            start = next(starts)
            slot = await bookings.slot(consultant, start)
            request = await bookings.request(
                service_type, window_start=start, window_end=start + timedelta(hours=1)
            )
            await bookings.book(request, slot, consultant, start)
            booked.append(request)

    async def watch_lock_waits() -> None:
        nonlocal longest_wait
        async with booking_engine.connect() as connection:
            while not sweep_done.is_set():
                waited = (await connection.execute(_LOCK_WAITS)).scalar_one()
                longest_wait = max(longest_wait, waited)
                await connection.commit()
                await asyncio.sleep(0.01)  # a sampling interval, nothing to await

    queue = f"retention-load-{uuid.uuid4()}"
    policy = RetentionPolicy.from_settings(settings)
    policy = RetentionPolicy(keep_seconds=policy.keep_seconds, batch_size=BATCH)
    async with Worker(
        dev_env.client,
        task_queue=queue,
        workflows=[RetentionSweepWorkflow],
        activities=[RetentionActivities(session_factory).sweep_batch],
    ):
        bookers = [asyncio.create_task(book_until_the_sweep_is_done(c)) for c in consultants]
        watcher = asyncio.create_task(watch_lock_waits())
        started_at = datetime.now(UTC)
        try:
            report = await dev_env.client.execute_workflow(
                RetentionSweepWorkflow.run, policy, id=f"sweep-{uuid.uuid4()}", task_queue=queue
            )
            booked_during_sweep = len(booked)
        finally:
            sweep_done.set()
            await asyncio.gather(*bookers, watcher)
    swept_for = datetime.now(UTC) - started_at

    assert report.removed[RetentionKind.REQUEST_DETAILS] == DUE
    assert report.removed[RetentionKind.DELIVERED_EVENTS] == DUE
    assert report.removed[RetentionKind.WEBHOOK_DELIVERIES] == DUE
    assert report.removed[RetentionKind.INBOUND_EVENTS] == DUE
    # Exactly the due rows: the young ones, and everything the bookings wrote, stay.
    assert await _count(session_factory, InboundWebhookEvent.id.is_not(None)) == KEPT
    assert await _count(session_factory, WebhookDelivery.id.is_not(None)) == 0
    assert await _count(
        session_factory, DomainEvent.consultation_request_id.in_(booked)
    ) == 4 * len(booked)  # requested, assigned, confirmation_requested, scheduled
    assert await _count(session_factory, ConsultationRequest.request_details.is_not(None)) == KEPT
    # The bookings went on throughout, and none waited long for a lock.
    assert booked_during_sweep >= 4, (booked_during_sweep, swept_for)
    assert longest_wait < LONGEST_ALLOWED_WAIT, longest_wait
