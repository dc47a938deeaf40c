"""Scheduling policies where they are enforced: buffers kept free around every held
and booked session (search, hold, carve, book, reschedule, release), caps per day and
week counted on the consultant's clock under their lock, and assignment passing over
a consultant at their cap. The SQL checks at the end of the races look at the rows
themselves, not at what the code reported."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from core.vocabulary import Party
from db.availability.search import SearchCriteria, search_bookable_starts
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import (
    FindCandidatesInput,
    ReleaseHoldInput,
    ReleaseOutcome,
    RescheduleSessionInput,
    ReserveInput,
)

STEP = 15


def at(hour: float, day: float = 0) -> datetime:
    return future(days=3 + day, hour=0) + timedelta(hours=hour)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


async def starts_offered(
    backend: Backend,
    consultant: uuid.UUID,
    duration: int,
    *,
    service_type: uuid.UUID | None = None,
    before: int = 0,
    after: int = 0,
    day: float = 0,
) -> list[datetime]:
    criteria = SearchCriteria(
        window_start=at(0, day),
        window_end=at(24, day),
        duration=minutes(duration),
        consultant_id=consultant,
        limit=200,
        start_interval_minutes=STEP,
        service_type_id=service_type,
        buffer_before=minutes(before),
        buffer_after=minutes(after),
    )
    async with backend.session_factory() as session:
        return [found.start_time for found in await search_bookable_starts(session, criteria)]


async def pieces(backend: Backend, consultant: uuid.UUID) -> list[tuple[datetime, datetime, str]]:
    return [(s.start_time, s.end_time, s.status) for s in await backend.slots_of(consultant)]


def grid(first: datetime, last: datetime) -> list[datetime]:
    count = int((last - first) / minutes(STEP)) + 1
    return [first + minutes(STEP * n) for n in range(count)]


async def reserve(
    backend: Backend,
    request_id: uuid.UUID,
    slot_id: uuid.UUID,
    consultant: uuid.UUID,
    start: datetime,
) -> uuid.UUID:
    row = await backend.request_row(request_id)
    session_id = uuid.uuid4()
    await backend.sessions.reserve(
        ReserveInput(
            request_id=request_id,
            session_id=session_id,
            slot_id=slot_id,
            consultant_id=consultant,
            requester_id=row.requester_user_id,
            service_type_id=row.consultation_service_type_id,
            start=start,
            end=start + minutes(30),
        )
    )
    return session_id


# --- buffers --------------------------------------------------------------------------


async def test_a_buffered_hold_carves_the_buffers_with_it_and_gives_them_back(
    backend: Backend,
) -> None:
    service_type = await backend.service_type(
        minutes=30, step=STEP, buffer_before_minutes=10, buffer_after_minutes=15
    )
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=3)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(11))
    # The buffer before lies in the published time too: 08:00 is not offered.
    assert await starts_offered(
        backend, consultant, 30, service_type=service_type, before=10, after=15
    ) == grid(at(8.25), at(10.25))

    held = await backend.hold(
        request_id, block, consultant, not_before=at(0), minutes=30, start=at(10), step=STEP
    )

    assert (held.held, held.start, held.end) == (True, at(10), at(10.5))
    assert await pieces(backend, consultant) == [
        (at(8), at(10) - minutes(10), "available"),
        (at(10) - minutes(10), at(10.5) + minutes(15), "held"),
        (at(10.5) + minutes(15), at(11), "available"),
    ]
    # A session of any type keeps out of the buffers: a 30-minute one without buffers
    # of its own ends by 09:50, and nothing fits in the 15 minutes after 10:45.
    assert await starts_offered(backend, consultant, 30) == grid(at(8), at(9.25))
    assert await starts_offered(
        backend, consultant, 30, service_type=service_type, before=10, after=15
    ) == grid(at(8.25), at(9))

    await backend.requests.release_hold(
        ReleaseHoldInput(
            request_id=request_id,
            slot_id=block,
            consultant_id=consultant,
            attempt=1,
            outcome=ReleaseOutcome.DECLINED,
        )
    )
    assert await pieces(backend, consultant) == [(at(8), at(11), "available")]
    async with backend.session_factory() as session:
        buffers = (
            await session.execute(
                text(
                    "SELECT buffer_before_minutes, buffer_after_minutes "
                    "FROM consultant_availability_slots WHERE id = :id"
                ),
                {"id": block},
            )
        ).one()
    assert tuple(buffers) == (0, 0)


async def test_the_larger_of_the_consultants_and_the_types_buffer_wins(backend: Backend) -> None:
    service_type = await backend.service_type(
        minutes=30, step=STEP, buffer_before_minutes=20, buffer_after_minutes=5
    )
    consultant = await backend.consultant(buffer_before_minutes=5, buffer_after_minutes=30)
    block = await backend.slot(consultant, at(8), hours=3)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(11))

    held = await backend.hold(
        request_id, block, consultant, not_before=at(0), minutes=30, start=at(9), step=STEP
    )

    assert held.held
    assert await pieces(backend, consultant) == [
        (at(8), at(9) - minutes(20), "available"),
        (at(9) - minutes(20), at(9.5) + minutes(30), "held"),
        (at(10), at(11), "available"),
    ]


async def test_a_start_whose_buffer_is_not_free_is_refused_naming_the_buffer(
    backend: Backend,
) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP, buffer_after_minutes=15)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=1)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(9))

    held = await backend.hold(
        request_id, block, consultant, not_before=at(0), minutes=30, start=at(8.5), step=STEP
    )

    assert not held.held
    assert held.refusal == "buffer"
    assert await pieces(backend, consultant) == [(at(8), at(9), "available")]


async def test_booking_and_rescheduling_keep_the_buffers_around_the_session(
    backend: Backend,
) -> None:
    service_type = await backend.service_type(
        minutes=30, step=STEP, buffer_before_minutes=15, buffer_after_minutes=15
    )
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=3)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(11))
    held = await backend.hold(
        request_id, block, consultant, not_before=at(0), minutes=30, start=at(9), step=STEP
    )
    assert held.held
    session_id = await reserve(backend, request_id, block, consultant, at(9))
    assert await pieces(backend, consultant) == [
        (at(8), at(8.75), "available"),
        (at(8.75), at(9.75), "booked"),
        (at(9.75), at(11), "available"),
    ]

    moved = await backend.hold(
        request_id,
        block,
        consultant,
        not_before=at(0),
        minutes=30,
        start=at(10),
        attempt=None,
        step=STEP,
    )
    assert moved.held
    assert moved.slot_id is not None
    await backend.sessions.reschedule_session(
        RescheduleSessionInput(
            request_id=request_id,
            session_id=session_id,
            from_slot_id=block,
            to_slot_id=moved.slot_id,
            start=at(10),
            end=at(10.5),
            party=Party.REQUESTER,
        )
    )

    assert await pieces(backend, consultant) == [
        (at(8), at(9.75), "available"),
        (at(9.75), at(10.75), "booked"),
        (at(10.75), at(11), "available"),
    ]
    assert await buffered_overlaps(backend, consultant) == 0


# --- caps -----------------------------------------------------------------------------


async def test_fifty_racing_holds_leave_exactly_the_days_cap(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant(max_sessions_per_day=3)
    slots = [await backend.slot(consultant, at(8 + hour), hours=1) for hour in range(10)]
    slots += [await backend.slot(consultant, at(8 + hour, day=1), hours=1) for hour in range(10)]
    requests = [
        await backend.request(service_type, window_start=at(0), window_end=at(24, day=1))
        for _ in range(50)
    ]

    results = await asyncio.gather(
        *(
            backend.hold(
                request_id,
                slots[n % len(slots)],
                consultant,
                not_before=at(0),
                minutes=30,
                step=STEP,
            )
            for n, request_id in enumerate(requests)
        )
    )

    assert sum(result.held for result in results) == 6  # 3 on each of the two days
    assert {result.refusal for result in results if not result.held} <= {"daily_cap", None}
    async with backend.session_factory() as session:
        days = (
            await session.execute(
                text(
                    "SELECT (start_time AT TIME ZONE 'UTC')::date AS day, count(*) "
                    "FROM consultant_availability_slots "
                    "WHERE consultant_user_id = :consultant AND status IN ('held', 'booked') "
                    "GROUP BY day"
                ),
                {"consultant": consultant},
            )
        ).all()
    assert sorted(count for _, count in days) == [3, 3]
    assert await buffered_overlaps(backend, consultant) == 0


async def buffered_overlaps(backend: Backend, consultant: uuid.UUID) -> int:
    """Pairs of held or booked sessions whose buffered ranges overlap (SQL). Such a
    slot spans its session plus its buffers, so its range is the buffered range; the
    session itself must lie inside it, buffers apart from its ends."""
    async with backend.session_factory() as session:
        overlapping: int = await session.scalar(
            text(
                "WITH taken AS (SELECT id, tstzrange(start_time, end_time) AS span, "
                "  start_time + make_interval(mins => buffer_before_minutes) AS session_start, "
                "  end_time - make_interval(mins => buffer_after_minutes) AS session_end "
                "  FROM consultant_availability_slots "
                "  WHERE consultant_user_id = :consultant AND status IN ('held', 'booked')) "
                "SELECT (SELECT count(*) FROM taken a JOIN taken b "
                "        ON a.id < b.id AND a.span && b.span) "
                "     + (SELECT count(*) FROM taken WHERE session_end <= session_start)"
            ),
            {"consultant": consultant},
        )
    return overlapping


async def test_a_days_cap_counts_the_consultants_own_day_across_a_clock_change(
    backend: Backend,
) -> None:
    """2027-03-14 in New York is 23 hours long (05:00Z to 04:00Z the next day): a
    session at 23:30 local still counts for the 14th, one at 00:30 on the 15th not."""
    zone = ZoneInfo("America/New_York")
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant(time_zone=zone.key, max_sessions_per_day=1)

    def local(day: int, hour: int, minute: int) -> datetime:
        return datetime(2027, 3, day, hour, minute, tzinfo=zone).astimezone(UTC)

    early, late, next_day = local(14, 0, 30), local(14, 23, 30), local(15, 0, 30)
    assert late.date() == next_day.date()  # the same UTC day, another local one
    outcomes = []
    for start in (early, late, next_day):
        slot = await backend.slot(consultant, start, hours=0.5)
        request_id = await backend.request(
            service_type, window_start=start, window_end=start + minutes(30)
        )
        outcomes.append(
            await backend.hold(request_id, slot, consultant, not_before=start, minutes=30)
        )

    assert [(o.held, o.refusal) for o in outcomes] == [
        (True, None),
        (False, "daily_cap"),
        (True, None),
    ]


async def test_a_weekly_cap_and_a_cap_of_one_type_count_apart(backend: Backend) -> None:
    capped_type = await backend.service_type(minutes=30, step=STEP)
    other_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant(max_sessions_per_week=3)
    async with backend.session_factory() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO consultant_service_limits "
                "(consultant_user_id, consultation_service_type_id, max_sessions_per_day) "
                "VALUES (:consultant, :service_type, 1)"
            ),
            {"consultant": consultant, "service_type": capped_type},
        )
    day = at(0)
    monday = day - timedelta(days=day.weekday())
    # Two sessions of the capped type on one day: the second breaks its daily cap.
    outcomes = []
    for service_type, start in (
        (capped_type, monday + timedelta(hours=9)),
        (capped_type, monday + timedelta(hours=11)),
        (other_type, monday + timedelta(hours=13)),
        (other_type, monday + timedelta(days=1, hours=9)),
        (capped_type, monday + timedelta(days=2, hours=9)),
    ):
        slot = await backend.slot(consultant, start, hours=0.5)
        request_id = await backend.request(
            service_type, window_start=start, window_end=start + minutes(30)
        )
        outcomes.append(
            await backend.hold(request_id, slot, consultant, not_before=start, minutes=30)
        )

    assert [o.refusal for o in outcomes] == [None, "daily_cap", None, None, "weekly_cap"]


async def test_assignment_passes_over_a_consultant_at_their_cap(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    capped = await backend.consultant(max_sessions_per_day=1)
    other = await backend.consultant()
    first_slot = await backend.slot(capped, at(8), hours=1)
    await backend.slot(capped, at(9), hours=1)
    await backend.slot(other, at(12), hours=1)
    taken = await backend.request(service_type, window_start=at(0), window_end=at(24))
    assert (await backend.hold(taken, first_slot, capped, not_before=at(0), minutes=30)).held
    request_id = await backend.request(service_type, window_start=at(0), window_end=at(24))
    query = FindCandidatesInput(
        request_id=request_id,
        service_type_id=service_type,
        duration_minutes=30,
        not_before=at(0),
        window_end=at(24),
        start_interval_minutes=STEP,
    )

    found = await backend.requests.find_candidates(query)
    only_capped = await backend.requests.find_candidates(
        FindCandidatesInput(**{**query.__dict__, "only_consultant_id": capped})
    )

    assert [(c.consultant_id, c.start) for c in found.candidates] == [(other, at(12))]
    assert only_capped.candidates == ()
    assert only_capped.refusal == "daily_cap"


async def test_a_page_skips_capped_days_and_stays_full_and_in_order(backend: Backend) -> None:
    """Most starts of the window lie on a capped consultant's full day: the page is
    still filled, in order, from the others, and the next page carries on."""
    service_type = await backend.service_type(minutes=30, step=STEP)
    capped = await backend.consultant(max_sessions_per_day=1)
    free = await backend.consultant()
    taken = await backend.slot(capped, at(7), hours=0.5)
    await backend.slot(capped, at(8), hours=8)  # 31 starts, all on the capped day
    await backend.slot(free, at(12), hours=2)  # 7 starts
    request_id = await backend.request(service_type, window_start=at(0), window_end=at(24))
    assert (await backend.hold(request_id, taken, capped, not_before=at(0), minutes=30)).held
    criteria = SearchCriteria(
        window_start=at(0),
        window_end=at(24),
        duration=minutes(30),
        limit=4,
        start_interval_minutes=STEP,
        service_type_id=service_type,
    )

    async with backend.session_factory() as session:
        first = await search_bookable_starts(session, criteria)
        last = first[-1]
        second = await search_bookable_starts(
            session, criteria, after=(last.start_time, last.slot_id)
        )

    assert [(f.consultant_user_id, f.start_time) for f in first] == [
        (free, at(12) + minutes(15 * n)) for n in range(4)
    ]
    assert [(f.consultant_user_id, f.start_time) for f in second] == [
        (free, at(13) + minutes(15 * n)) for n in range(3)
    ]
