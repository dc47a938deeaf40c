"""Holding exactly one session's time: the carve, a chosen start, and the races.

Every hold carves its free slot into [before][held][after]; a release merges the
pieces back. A chosen start is held in whichever free piece of its published slot
contains it, so requests racing for different starts of one block all get theirs,
and requests racing for the same start leave exactly one hold.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from db.availability.search import SearchCriteria, search_bookable_starts
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import FindCandidatesInput, ReleaseHoldInput, ReleaseOutcome

STEP = 15


def at(hour: float) -> datetime:
    return future(hour=0) + timedelta(hours=hour)


async def starts_offered(backend: Backend, consultant: uuid.UUID, minutes: int) -> list[datetime]:
    criteria = SearchCriteria(
        window_start=at(0),
        window_end=at(24),
        duration=timedelta(minutes=minutes),
        consultant_id=consultant,
        limit=200,
        start_interval_minutes=STEP,
    )
    async with backend.session_factory() as session:
        return [found.start_time for found in await search_bookable_starts(session, criteria)]


def quarter_hours(first: float, last: float) -> list[datetime]:
    return [at(first) + timedelta(minutes=STEP * n) for n in range(int((last - first) * 4) + 1)]


async def pieces(backend: Backend, consultant: uuid.UUID) -> list[tuple[datetime, datetime, str]]:
    return [(s.start_time, s.end_time, s.status) for s in await backend.slots_of(consultant)]


async def test_holding_10_00_in_an_08_to_11_block_leaves_the_rest_bookable(
    backend: Backend,
) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=3)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(11))
    assert await starts_offered(backend, consultant, 30) == quarter_hours(8, 10.5)

    held = await backend.hold(
        request_id, block, consultant, not_before=at(0), minutes=30, start=at(10), step=STEP
    )

    assert (held.held, held.slot_id, held.start, held.end) == (True, block, at(10), at(10.5))
    assert await pieces(backend, consultant) == [
        (at(8), at(10), "available"),
        (at(10), at(10.5), "held"),
        (at(10.5), at(11), "available"),
    ]
    assert await starts_offered(backend, consultant, 30) == [*quarter_hours(8, 9.5), at(10.5)]
    assert await starts_offered(backend, consultant, 60) == quarter_hours(8, 9)

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
    assert await starts_offered(backend, consultant, 30) == quarter_hours(8, 10.5)


async def test_without_a_chosen_start_the_earliest_grid_start_is_held(backend: Backend) -> None:
    """A block from 08:05 on a quarter-hour grid: the hold takes 08:15-09:15."""
    service_type = await backend.service_type(step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8) + timedelta(minutes=5), hours=2)
    request_id = await backend.request(service_type, window_start=at(0), window_end=at(12))

    held = await backend.hold(request_id, block, consultant, not_before=at(0), step=STEP)

    assert (held.held, held.start, held.end) == (True, at(8.25), at(9.25))
    assert await pieces(backend, consultant) == [
        (at(8) + timedelta(minutes=5), at(8.25), "available"),
        (at(8.25), at(9.25), "held"),
        (at(9.25), at(10) + timedelta(minutes=5), "available"),
    ]


async def test_a_start_the_slot_does_not_offer_is_not_held(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=3)
    request_id = await backend.request(service_type, window_start=at(8), window_end=at(11))

    refused = {
        "off the grid": (at(10) + timedelta(minutes=10), at(0)),
        "runs past the slot": (at(10.75), at(0)),
        "before the slot": (at(7.75), at(0)),
        "sooner than allowed": (at(9), at(9.5)),
    }
    for why, (start, not_before) in refused.items():
        held = await backend.hold(
            request_id, block, consultant, not_before=not_before, minutes=30, start=start, step=STEP
        )
        assert not held.held, why

    assert await pieces(backend, consultant) == [(at(8), at(11), "available")]
    assert (await backend.request_row(request_id)).status == "pending_assignment"


async def test_many_holds_of_one_start_leave_exactly_one(backend: Backend) -> None:
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=3)
    requests = [
        await backend.request(service_type, window_start=at(9), window_end=at(9.5))
        for _ in range(20)
    ]

    results = await asyncio.gather(
        *(
            backend.hold(r, block, consultant, not_before=at(0), minutes=30, start=at(9), step=STEP)
            for r in requests
        )
    )

    assert sum(result.held for result in results) == 1
    assert await pieces(backend, consultant) == [
        (at(8), at(9), "available"),
        (at(9), at(9.5), "held"),
        (at(9.5), at(11), "available"),
    ]
    statuses = [(await backend.request_row(r)).status for r in requests]
    assert statuses.count("pending_confirmation") == 1


async def test_racing_for_different_starts_of_one_block_each_start_is_held_once(
    backend: Backend,
) -> None:
    """Six starts, three requests each, all naming the same slot at once: each start
    is held exactly once although every hold but the first finds the slot carved."""
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=3)
    wanted = [at(8 + half / 2) for half in range(6)]  # 08:00, 08:30, ..., 10:30
    contenders = [
        (start, await backend.request(service_type, window_start=at(0), window_end=at(12)))
        for start in wanted
        for _ in range(3)
    ]

    results = await asyncio.gather(
        *(
            backend.hold(r, block, consultant, not_before=at(0), minutes=30, start=s, step=STEP)
            for s, r in contenders
        )
    )

    held = sorted(result.start for result in results if result.held and result.start)
    assert held == wanted
    slots = await backend.slots_of(consultant)
    assert [(s.start_time, s.end_time, s.status) for s in slots] == [
        (start, start + timedelta(minutes=30), "held") for start in wanted
    ]
    assert {s.carved_from_slot_id or s.id for s in slots} == {block}


async def test_a_requested_slot_carved_by_another_hold_still_offers_its_other_starts(
    backend: Backend,
) -> None:
    """A request for a slot finds its remaining free time after another request held
    part of that slot (by its lineage), but never another slot of the consultant."""
    service_type = await backend.service_type(minutes=30, step=STEP)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, at(8), hours=1)
    await backend.slot(consultant, at(13), hours=1)  # the same consultant, another slot
    other = await backend.request(service_type, window_start=at(8), window_end=at(9))
    assert (
        await backend.hold(
            other, block, consultant, not_before=at(0), minutes=30, start=at(8), step=STEP
        )
    ).held
    query = FindCandidatesInput(
        request_id=uuid.uuid4(),
        service_type_id=service_type,
        duration_minutes=30,
        not_before=at(0),
        window_end=at(24),
        requested_slot_id=block,
        start_interval_minutes=STEP,
    )

    found = await backend.requests.find_candidates(query)

    (candidate,) = found.candidates
    assert candidate.slot_id != block
    assert (candidate.consultant_id, candidate.start) == (consultant, at(8.5))


async def test_candidates_start_on_the_consultants_clock(backend: Backend) -> None:
    """Hourly starts for a consultant in Kathmandu (UTC+05:45) are at :15 UTC."""
    service_type = await backend.service_type(minutes=30, step=60)
    consultant = await backend.consultant(time_zone="Asia/Kathmandu")
    await backend.slot(consultant, at(8), hours=3)

    found = await backend.requests.find_candidates(
        FindCandidatesInput(
            request_id=uuid.uuid4(),
            service_type_id=service_type,
            duration_minutes=30,
            not_before=at(0),
            window_end=at(24),
            start_interval_minutes=60,
        )
    )

    assert [c.start for c in found.candidates] == [at(8.25)]
