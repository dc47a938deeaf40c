"""The retention sweep's statements: each batch removes only what is due, at most a
batch of it, and leaves a row someone else holds locked for later instead of waiting."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.vocabulary import (
    DeliveryStatus,
    PersonalDataSection,
    RequestStatus,
    RetentionKind,
    SessionStatus,
)
from db import exports, retention
from db.errors import sqlstate
from db.models import (
    ConsultationRequest,
    DomainEvent,
    InboundWebhookEvent,
    PersonalDataExport,
    PersonalDataExportPart,
    ScheduledSession,
    WebhookDelivery,
)
from tests.support.aged_rows import AgedRows, ago

SessionFactory = async_sessionmaker[AsyncSession]

CUTOFF_DAYS = 30
LOCK_NOT_AVAILABLE = "55P03"


def cutoff() -> datetime:
    return datetime.now(UTC) - timedelta(days=CUTOFF_DAYS)


OLD = {"days": CUTOFF_DAYS + 5}
RECENT = {"days": CUTOFF_DAYS - 5}


@pytest.fixture
def aged(session_factory: SessionFactory) -> AgedRows:
    return AgedRows(session_factory)


async def sweep_all(sessions: SessionFactory, kind: RetentionKind, batch_size: int) -> list[int]:
    """Batches until one comes back short; how many rows each removed."""
    removed: list[int] = []
    while True:
        async with sessions() as session, session.begin():
            count = await retention.sweep_batch(
                session, kind, older_than=cutoff(), batch_size=batch_size
            )
        removed.append(count)
        if count < batch_size:
            return removed


async def ids(sessions: SessionFactory, column: Any) -> set[uuid.UUID]:
    async with sessions() as session:
        return set((await session.scalars(select(column))).all())


async def test_finished_deliveries_go_after_their_time_pending_ones_stay(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    events = await aged.events(7, occurred=ago(**OLD))
    succeeded = await aged.deliveries(
        events[:3], status=DeliveryStatus.SUCCEEDED, updated=ago(**OLD)
    )
    parked = await aged.deliveries(events[3:5], status=DeliveryStatus.PARKED, updated=ago(**OLD))
    pending = await aged.deliveries(events[5:6], status=DeliveryStatus.PENDING, updated=ago(**OLD))
    recent = await aged.deliveries(
        events[6:], status=DeliveryStatus.SUCCEEDED, updated=ago(**RECENT)
    )

    assert await sweep_all(session_factory, RetentionKind.WEBHOOK_DELIVERIES, 2) == [2, 2, 1]

    assert await ids(session_factory, WebhookDelivery.id) == set(pending + recent)
    assert set(succeeded + parked).isdisjoint(await ids(session_factory, WebhookDelivery.id))


async def test_events_go_once_delivered_fanned_out_and_their_request_is_over(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    finished = (await aged.requests(1, status=RequestStatus.COMPLETED, updated=ago(**OLD)))[0]
    still_open = (await aged.requests(1, status=RequestStatus.SCHEDULED, updated=ago(**OLD)))[0]
    due = await aged.events(3, occurred=ago(**OLD), request_id=finished)
    delivered = await aged.events(1, occurred=ago(**OLD))
    await aged.deliveries(delivered, status=DeliveryStatus.SUCCEEDED, updated=ago(**RECENT))
    undelivered = await aged.events(1, occurred=ago(**OLD))
    await aged.deliveries(undelivered, status=DeliveryStatus.PENDING, updated=ago(**OLD))
    of_open_request = await aged.events(1, occurred=ago(**OLD), request_id=still_open)
    recent = await aged.events(1, occurred=ago(**RECENT))
    await aged.fanned_out_up_to_now()
    not_fanned_out = await aged.events(1, occurred=ago(**OLD))

    assert await sweep_all(session_factory, RetentionKind.DELIVERED_EVENTS, 3) == [3, 1]

    assert await ids(session_factory, DomainEvent.id) == set(
        undelivered + of_open_request + recent + not_fanned_out
    )
    # The delivered event's (recent) delivery went with it.
    async with session_factory() as session:
        left = await session.scalar(
            select(func.count()).where(WebhookDelivery.event_id.in_(delivered))
        )
    assert left == 0
    assert set(due).isdisjoint(await ids(session_factory, DomainEvent.id))


async def test_no_event_goes_before_the_first_fan_out(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    kept = await aged.events(2, occurred=ago(**OLD))
    assert await sweep_all(session_factory, RetentionKind.DELIVERED_EVENTS, 10) == [0]
    assert await ids(session_factory, DomainEvent.id) == set(kept)


async def test_inbound_event_ids_go_after_their_time(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    await aged.inbound_events(5, received=ago(**OLD))
    recent = await aged.inbound_events(2, received=ago(**RECENT))
    assert await sweep_all(session_factory, RetentionKind.INBOUND_EVENTS, 4) == [4, 1]
    assert await ids(session_factory, InboundWebhookEvent.id) == set(recent)


async def test_details_of_finished_requests_are_cleared_the_requests_stay(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    due = [
        *await aged.requests(2, status=RequestStatus.COMPLETED, updated=ago(**OLD)),
        *await aged.requests(1, status=RequestStatus.CANCELLED, updated=ago(**OLD)),
        *await aged.requests(1, status=RequestStatus.REJECTED, updated=ago(**OLD)),
    ]
    open_old = await aged.requests(1, status=RequestStatus.PENDING_ASSIGNMENT, updated=ago(**OLD))
    finished_recently = await aged.requests(
        1, status=RequestStatus.COMPLETED, updated=ago(**RECENT)
    )

    assert await sweep_all(session_factory, RetentionKind.REQUEST_DETAILS, 3) == [3, 1]

    async with session_factory() as session:
        rows = dict(
            (
                await session.execute(
                    select(ConsultationRequest.id, ConsultationRequest.request_details)
                )
            ).all()
        )
    assert len(rows) == 6
    assert {request for request, details in rows.items() if details is None} == set(due)
    assert rows[open_old[0]] is not None
    assert rows[finished_recently[0]] is not None


async def test_join_links_of_sessions_that_are_over_are_cleared(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    requests = await aged.requests(4, status=RequestStatus.COMPLETED, updated=ago(**OLD))
    completed = await aged.session_for(
        requests[0], status=SessionStatus.COMPLETED, updated=ago(**OLD)
    )
    cancelled = await aged.session_for(
        requests[1], status=SessionStatus.CANCELLED_BY_USER, updated=ago(**OLD)
    )
    ahead = await aged.session_for(requests[2], status=SessionStatus.SCHEDULED, updated=ago(**OLD))
    recent = await aged.session_for(
        requests[3], status=SessionStatus.NO_SHOW_USER, updated=ago(**RECENT)
    )

    assert await sweep_all(session_factory, RetentionKind.MEETING_LINKS, 5) == [2]

    async with session_factory() as session:
        links = dict(
            (
                await session.execute(
                    select(ScheduledSession.id, ScheduledSession.meeting_platform_join_url)
                )
            ).all()
        )
    assert links[completed] is None
    assert links[cancelled] is None
    assert links[ahead] is not None
    assert links[recent] is not None


async def test_a_row_held_by_someone_else_is_skipped_not_waited_for(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    """A redelivery (say) holds one due delivery's row: the batch takes the others at
    once, and the held one goes in a later batch."""
    events = await aged.events(3, occurred=ago(**OLD))
    held, *_ = await aged.deliveries(events, status=DeliveryStatus.PARKED, updated=ago(**OLD))
    locked = asyncio.Event()
    release = asyncio.Event()

    async def hold_row() -> None:
        async with session_factory() as session, session.begin():
            await session.execute(
                select(WebhookDelivery.id).where(WebhookDelivery.id == held).with_for_update()
            )
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold_row())
    await locked.wait()
    try:
        started = time.monotonic()
        async with session_factory() as session, session.begin():
            removed = await retention.sweep_batch(
                session, RetentionKind.WEBHOOK_DELIVERIES, older_than=cutoff(), batch_size=10
            )
        assert time.monotonic() - started < 1.0
        assert removed == 2
        assert await ids(session_factory, WebhookDelivery.id) == {held}
    finally:
        release.set()
        await holder
    assert await sweep_all(session_factory, RetentionKind.WEBHOOK_DELIVERIES, 10) == [1]


async def test_a_sweep_gives_up_on_a_lock_rather_than_wait_long(
    aged: AgedRows, session_factory: SessionFactory
) -> None:
    """Deleting a due event cascades to its deliveries; one of them locked by someone
    else makes the batch fail after the lock timeout (to be retried), not hang."""
    (event,) = await aged.events(1, occurred=ago(**OLD))
    (delivery,) = await aged.deliveries(
        [event], status=DeliveryStatus.SUCCEEDED, updated=ago(**RECENT)
    )
    await aged.fanned_out_up_to_now()
    locked = asyncio.Event()
    release = asyncio.Event()

    async def hold_row() -> None:
        async with session_factory() as session, session.begin():
            await session.execute(
                select(WebhookDelivery.id).where(WebhookDelivery.id == delivery).with_for_update()
            )
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold_row())
    await locked.wait()
    try:
        started = time.monotonic()
        with pytest.raises(DBAPIError) as refused:
            async with session_factory() as session, session.begin():
                await retention.sweep_batch(
                    session, RetentionKind.DELIVERED_EVENTS, older_than=cutoff(), batch_size=10
                )
        waited = time.monotonic() - started
    finally:
        release.set()
        await holder
    assert sqlstate(refused.value) == LOCK_NOT_AVAILABLE
    assert 0.9 < waited < 3.0
    assert await sweep_all(session_factory, RetentionKind.DELIVERED_EVENTS, 10) == [1]


async def test_exports_go_with_their_parts_after_their_time(
    session_factory: SessionFactory,
) -> None:
    async with session_factory() as session, session.begin():
        old = PersonalDataExport(
            subject_id=uuid.uuid4(), requested_by=uuid.uuid4(), requested_at=ago(**OLD)
        )
        young = PersonalDataExport(
            subject_id=uuid.uuid4(), requested_by=uuid.uuid4(), requested_at=ago(**RECENT)
        )
        session.add_all([old, young])
        await session.flush()
        for export in (old, young):
            await exports.store_part(
                session,
                export.id,
                position=0,
                section=PersonalDataSection.PROFILE,
                items=[{"a": 1}],
            )
    assert await sweep_all(session_factory, RetentionKind.EXPORTS, 5) == [1]
    assert await ids(session_factory, PersonalDataExport.id) == {young.id}
    assert await ids(session_factory, PersonalDataExportPart.export_id) == {young.id}
