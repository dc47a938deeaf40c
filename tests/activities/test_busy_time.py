"""Busy time from linked calendars where it is enforced: the search never offers a
start whose session (with its buffers) meets busy time, automatic assignment passes
over a consultant who is busy, the hold skips or refuses busy starts, and the
booking reads busy time again when the consultant confirms. A stale calendar keeps
its busy set, and with ``calendar_stale_blocks_booking`` blocks the consultant."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from temporalio.exceptions import ApplicationError

from activities.requests import RequestActivities
from core.vocabulary import ErrorType
from db.availability.search import SearchCriteria, search_bookable_starts, search_bookable_times
from db.calendars import busy_sets
from db.models import BusyInterval, ConsultantCalendar, ConsultantProfile
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import FindCandidatesInput, ReserveInput

STEP = 15


def at(hour: float) -> datetime:
    return future(days=3, hour=0) + timedelta(hours=hour)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def grid(first: datetime, last: datetime) -> list[datetime]:
    count = int((last - first) / minutes(STEP)) + 1
    return [first + minutes(STEP * n) for n in range(count)]


def criteria(
    consultant: uuid.UUID | None, *, after: int = 0, stale_calendars_block: bool = False
) -> SearchCriteria:
    return SearchCriteria(
        window_start=at(0),
        window_end=at(24),
        duration=minutes(30),
        consultant_id=consultant,
        limit=200,
        start_interval_minutes=STEP,
        buffer_after=minutes(after),
        stale_calendars_block=stale_calendars_block,
    )


async def starts_offered(
    backend: Backend, consultant: uuid.UUID, *, after: int = 0, stale_calendars_block: bool = False
) -> list[datetime]:
    search = criteria(consultant, after=after, stale_calendars_block=stale_calendars_block)
    async with backend.session_factory() as session:
        return [found.start_time for found in await search_bookable_starts(session, search)]


def find(
    service_type: uuid.UUID, request_id: uuid.UUID, *, only: uuid.UUID | None = None
) -> FindCandidatesInput:
    return FindCandidatesInput(
        request_id=request_id,
        service_type_id=service_type,
        duration_minutes=30,
        not_before=at(0),
        window_end=at(24),
        only_consultant_id=only,
        start_interval_minutes=STEP,
    )


async def test_the_search_offers_no_start_whose_session_or_buffer_meets_busy_time(
    backend: Backend,
) -> None:
    consultant = await backend.consultant()
    await backend.slot(consultant, at(8), hours=4)
    await backend.busy(consultant, at(9.5), at(10))

    # A 30-minute session with 15 minutes kept free after it: 08:45 ends its buffer
    # exactly when the busy time begins; 09:00 to 09:45 would meet it.
    assert await starts_offered(backend, consultant, after=15) == [
        *grid(at(8), at(8.75)),
        *grid(at(10), at(11.25)),
    ]
    async with backend.session_factory() as session:
        earliest = await search_bookable_times(
            session, replace(criteria(consultant, after=15), window_start=at(9))
        )
    assert [found.start_time for found in earliest] == [at(10)]


async def test_a_stale_calendar_keeps_its_busy_time_and_blocks_only_when_set_to(
    backend: Backend,
) -> None:
    consultant = await backend.consultant()
    await backend.slot(consultant, at(8), hours=2)
    await backend.busy(consultant, at(8), at(9), stale=True)

    assert await starts_offered(backend, consultant) == grid(at(9), at(9.5))
    assert await starts_offered(backend, consultant, stale_calendars_block=True) == []


async def test_the_hold_skips_busy_starts_and_refuses_a_chosen_busy_one(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=2)
    await backend.busy(consultant, at(8), at(8.75))
    first = await backend.request(service_type, window_start=at(8), window_end=at(10))
    second = await backend.request(service_type, window_start=at(8), window_end=at(10))

    refused = await backend.hold(
        second, block, consultant, not_before=at(0), minutes=30, start=at(8.5), step=STEP
    )
    held = await backend.hold(first, block, consultant, not_before=at(0), minutes=30, step=STEP)

    assert (refused.held, refused.refusal) == (False, "calendar_busy")
    assert (held.held, held.start, held.end) == (True, at(8.75), at(9.25))


async def test_a_slot_covered_by_busy_time_is_refused_naming_the_calendar(
    backend: Backend,
) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=1)
    await backend.busy(consultant, at(7), at(12))
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(9))

    held = await backend.hold(request_id, block, consultant, not_before=at(0), minutes=30)

    assert (held.held, held.refusal) == (False, "calendar_busy")
    assert [s.status for s in await backend.slots_of(consultant)] == ["available"]


async def test_a_stale_calendar_refuses_holds_when_set_to(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=1)
    await backend.busy(consultant, at(20), at(21), stale=True)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(9))
    backend.requests = RequestActivities(backend.session_factory, stale_calendars_block=True)

    held = await backend.hold(request_id, block, consultant, not_before=at(0), minutes=30)

    assert (held.held, held.refusal) == (False, "calendar_busy")


async def test_busy_time_found_after_the_hold_fails_the_booking_clearly(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=2)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(10))
    held = await backend.hold(request_id, block, consultant, not_before=at(0), minutes=30)
    assert (held.held, held.start) == (True, at(8))
    # The calendar sync finds a new event over the held time before the consultant answers.
    await backend.busy(consultant, at(8.25), at(8.5))
    row = await backend.request_row(request_id)

    with pytest.raises(ApplicationError) as refused:
        await backend.sessions.reserve(
            ReserveInput(
                request_id=request_id,
                session_id=uuid.uuid4(),
                slot_id=block,
                consultant_id=consultant,
                requester_id=row.requester_user_id,
                service_type_id=row.consultation_service_type_id,
                start=at(8),
                end=at(8.5),
            )
        )

    assert refused.value.type == ErrorType.CONSULTANT_BUSY.value
    assert refused.value.non_retryable
    assert [s.status for s in await backend.slots_of(consultant)] == ["held", "available"]
    assert (await backend.request_row(request_id)).scheduled_session_id is None


async def test_assignment_passes_over_a_busy_consultant_and_names_the_calendar_to_an_operator(
    backend: Backend,
) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    busy = await backend.consultant()
    free = await backend.consultant()
    await backend.slot(busy, at(8), hours=1)
    await backend.slot(free, at(9), hours=1)
    await backend.busy(busy, at(8), at(9))
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(10))

    found = await backend.requests.find_candidates(find(service_type, request_id))
    operator_choice = await backend.requests.find_candidates(
        find(service_type, request_id, only=busy)
    )

    assert [(c.consultant_id, c.start) for c in found.candidates] == [(free, at(9))]
    assert (operator_choice.candidates, operator_choice.refusal) == ((), "calendar_busy")


async def test_the_profile_counts_the_linked_calendars_the_search_reads_busy_time_for(
    backend: Backend,
) -> None:
    consultant = await backend.consultant()
    first = await backend.busy(consultant, at(8), at(9))
    await backend.busy(consultant, at(10), at(11))

    async def linked() -> int:
        async with backend.session_factory() as session:
            profile = await session.get(ConsultantProfile, consultant)
            assert profile is not None
            return profile.linked_calendars

    assert await linked() == 2
    async with backend.session_factory() as session, session.begin():
        await session.execute(delete(ConsultantCalendar).where(ConsultantCalendar.id == first))
    assert await linked() == 1


async def test_a_multi_day_event_is_stored_in_pieces_of_a_day_and_blocks_all_of_them(
    backend: Backend,
) -> None:
    consultant = await backend.consultant()
    await backend.slot(consultant, at(8), hours=2)
    await backend.slot(consultant, at(8 + 48), hours=2)
    await backend.slot(consultant, at(8 + 96), hours=2)
    calendar = await backend.busy(consultant, at(0), at(1))
    away = busy_sets.Interval(at(6), at(6 + 72))  # three days away, from 06:00
    async with backend.session_factory() as session, session.begin():
        await busy_sets.replace_all(
            session,
            calendar,
            {"trip": [away]},
            state=busy_sets.SyncState(),
            expanded_until=at(24 * 30),
            at=at(0),
            max_intervals=100,
        )
    async with backend.session_factory() as session:
        pieces = await session.scalar(
            select(func.count())
            .select_from(BusyInterval)
            .where(BusyInterval.calendar_id == calendar)
        )
        read_back = await busy_sets.busy_of(session, calendar)

    assert pieces == 3
    assert read_back == [("trip", away)]
    search = replace(criteria(consultant), window_end=at(24 * 5))
    async with backend.session_factory() as session:
        offered = [found.start_time for found in await search_bookable_starts(session, search)]
    assert [start for start in offered if start < at(6 + 72)] == []
    assert offered[0] == at(8 + 96)
