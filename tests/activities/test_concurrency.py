"""Races decided by PostgreSQL, and its verdicts mapped to clean outcomes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import ApplicationError

from activities import DATABASE_CONFLICT, transaction
from core.vocabulary import ErrorType
from db.models import AvailabilitySlot
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import ReservedSession, ReserveInput

CONTENDERS = 20


async def test_many_holds_on_one_slot_exactly_one_wins(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    requests = [
        await backend.request(service_type_id, window_start=start, window_end=future(9))
        for _ in range(CONTENDERS)
    ]

    results = await asyncio.gather(
        *(backend.hold(request, slot, consultant, not_before=start) for request in requests)
    )

    winners = [request for request, result in zip(requests, results, strict=True) if result.held]
    assert len(winners) == 1
    (slot_row,) = await backend.slots_of(consultant)
    assert (slot_row.status, slot_row.held_by_request_id) == ("held", winners[0])
    statuses = [(await backend.request_row(request)).status for request in requests]
    assert statuses.count("pending_confirmation") == 1
    assert statuses.count("pending_assignment") == CONTENDERS - 1


async def test_only_the_holder_can_reserve(backend: Backend) -> None:
    """Two requests race for a slot, then both try to reserve it: one session, one
    clean refusal."""
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start, hours=2)
    requests = [
        await backend.request(service_type_id, window_start=start, window_end=future(9))
        for _ in range(2)
    ]
    await asyncio.gather(
        *(backend.hold(request, slot, consultant, not_before=start) for request in requests)
    )

    outcomes = await asyncio.gather(
        *(reserve(backend, request, slot, consultant, start) for request in requests),
        return_exceptions=True,
    )

    refusals = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert [r.type for r in refusals] == [ErrorType.HOLD_LOST]
    assert [s.status for s in await backend.slots_of(consultant)] == ["booked", "available"]


async def reserve(
    backend: Backend, request_id: uuid.UUID, slot: uuid.UUID, consultant: uuid.UUID, start: datetime
) -> ReservedSession:
    row = await backend.request_row(request_id)
    return await backend.sessions.reserve(
        ReserveInput(
            request_id=request_id,
            session_id=uuid.uuid4(),
            slot_id=slot,
            consultant_id=consultant,
            requester_id=row.requester_user_id,
            service_type_id=row.consultation_service_type_id,
            start=start,
            end=start + timedelta(hours=1),
        )
    )


async def test_an_overlapping_slot_is_a_non_retryable_refusal(backend: Backend) -> None:
    consultant = await backend.consultant()
    start = future()
    await backend.slot(consultant, start, hours=2)

    with pytest.raises(ApplicationError) as refused:
        async with transaction(backend.session_factory) as session:
            await session.execute(
                insert(AvailabilitySlot).values(
                    consultant_user_id=consultant,
                    start_time=start + timedelta(hours=1),
                    end_time=start + timedelta(hours=3),
                )
            )
    assert refused.value.type == ErrorType.SLOT_UNAVAILABLE
    assert refused.value.non_retryable


async def test_a_deadlock_is_a_retryable_conflict(backend: Backend) -> None:
    consultant = await backend.consultant()
    a = await backend.slot(consultant, future(hour=9))
    b = await backend.slot(consultant, future(hour=11))
    locked = [asyncio.Event(), asyncio.Event()]

    async def lock_in_order(first: uuid.UUID, second: uuid.UUID, me: int) -> None:
        async with transaction(backend.session_factory) as session:
            await _touch(session, first)
            locked[me].set()
            await locked[1 - me].wait()
            await _touch(session, second)

    outcomes = await asyncio.gather(
        lock_in_order(a, b, 0), lock_in_order(b, a, 1), return_exceptions=True
    )

    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(failures) == 1
    (failure,) = failures
    assert isinstance(failure, ApplicationError)
    assert failure.type == DATABASE_CONFLICT
    assert not failure.non_retryable


async def _touch(session: AsyncSession, slot_id: uuid.UUID) -> None:
    await session.execute(
        update(AvailabilitySlot).where(AvailabilitySlot.id == slot_id).values(hold_expires_at=None)
    )
