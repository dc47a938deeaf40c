"""Chosen starts end to end: what the search offers is what a submit books, the rest of
the block stays bookable, and learners racing for starts leave one hold per start."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AvailabilitySlot
from tests.e2e.support import Actor, Service, assert_no_double_booking, days_ahead, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

Sessions = async_sessionmaker[AsyncSession]
SEARCH = "/v1/availability/search"


async def offered(service: Service, service_type: object, consultant: Actor) -> list[datetime]:
    response = await service.http.get(
        SEARCH,
        params={
            "service_type_id": str(service_type),
            "consultant_id": str(consultant.user_id),
            "from": days_ahead(2, hour=0).isoformat(),
            "to": days_ahead(5, hour=0).isoformat(),
            "limit": 200,
        },
        headers=service.learner().headers,
    )
    assert response.status_code == 200, response.text
    return [datetime.fromisoformat(item["start_time"]) for item in response.json()["items"]]


def every_quarter(first: datetime, last: datetime) -> list[datetime]:
    count = int((last - first) / timedelta(minutes=15)) + 1
    return [first + n * timedelta(minutes=15) for n in range(count)]


async def test_a_chosen_start_is_booked_moved_and_given_back_exactly(
    service: Service, session_factory: Sessions
) -> None:
    """Book 10:00 in an 08:00-11:00 block: 08:00-10:00 and 10:30-11:00 stay bookable.
    Move it to 08:15 (a start the search offers), cancel: the block is whole again."""
    service_type = await service.service_type(minutes=30, start_interval_minutes=15)
    consultant = await service.consultant()
    eight, ten, eleven = days_ahead(3, hour=8), days_ahead(3, hour=10), days_ahead(3, hour=11)
    block = await service.slot(consultant, eight, eleven)
    everything = every_quarter(eight, eleven - timedelta(minutes=30))
    assert await offered(service, service_type, consultant) == everything
    learner = service.learner()

    session = await service.book(
        learner, consultant, {"service_type_id": service_type, "slot_id": block, "start": ten}
    )

    assert (session["start"], session["end"]) == (
        ten.isoformat().replace("+00:00", "Z"),
        (ten + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
    )
    left = [*every_quarter(eight, ten - timedelta(minutes=30)), ten + timedelta(minutes=30)]
    assert await offered(service, service_type, consultant) == left
    request = await service.request(session["request_id"])
    assert request["requested_start"] == ten.isoformat().replace("+00:00", "Z")

    # The search's item for 08:15 names the free piece before the booking.
    quarter_past = eight + timedelta(minutes=15)
    moved = await service.session_act(
        learner, session["id"], "reschedule", {"slot_id": block, "start": quarter_past}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == quarter_past.isoformat().replace("+00:00", "Z")
    # 08:00-08:15 is too short for a session; 10:00 merged back into 08:45-11:00.
    assert await offered(service, service_type, consultant) == every_quarter(
        eight + timedelta(minutes=45), eleven - timedelta(minutes=30)
    )

    cancelled = await service.session_act(learner, session["id"], "cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert await offered(service, service_type, consultant) == everything
    async with session_factory() as db:
        slots = (
            await db.execute(
                select(AvailabilitySlot.start_time, AvailabilitySlot.end_time).where(
                    AvailabilitySlot.consultant_user_id == consultant.user_id
                )
            )
        ).all()
    assert [tuple(slot) for slot in slots] == [(eight, eleven)]


async def test_learners_racing_for_starts_leave_one_hold_per_start(
    service: Service, session_factory: Sessions
) -> None:
    """Sixty learners submit at once for four starts of one block, all naming the
    slot the search showed them: each start is held for exactly one of them, the
    others wait holding nothing, and nothing overlaps."""
    service_type = await service.service_type(minutes=30, start_interval_minutes=15)
    consultant = await service.consultant()
    eight = days_ahead(3, hour=8)
    block = await service.slot(consultant, eight, eight + timedelta(hours=3))
    starts = [
        eight,
        eight + timedelta(minutes=45),
        eight + timedelta(hours=1, minutes=30),
        eight + timedelta(hours=2, minutes=30),
    ]
    wanted = [starts[n % len(starts)] for n in range(60)]

    submitted = await asyncio.gather(
        *(
            service.submit(
                service.learner(), {"service_type_id": service_type, "slot_id": block, "start": s}
            )
            for s in wanted
        )
    )
    codes = Counter(response.status_code for response in submitted)
    # A start already held when its submit was checked is refused there (409); the
    # others race in their workflows.
    assert set(codes) <= {201, 409}, [r.text for r in submitted if r.status_code not in (201, 409)]
    ids = [r.json()["id"] for r in submitted if r.status_code == 201]

    async def requests() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(service.request(i) for i in ids)))

    def settled(found: list[dict[str, Any]]) -> bool:
        offered_ = [r for r in found if r["status"] == "pending_confirmation"]
        waiting = [r for r in found if r["status"] == "pending_assignment"]
        return len(offered_) == len(starts) and all(
            r["live"] and r["live"]["next_assignment_retry_at"] for r in waiting
        )

    raced = await wait_until(requests, settled, what="one hold per start", within=60)
    winners = [r for r in raced if r["status"] == "pending_confirmation"]
    assert sorted(datetime.fromisoformat(r["requested_start"]) for r in winners) == starts
    async with session_factory() as db:
        held = (
            await db.execute(
                select(AvailabilitySlot.start_time, AvailabilitySlot.end_time)
                .where(
                    AvailabilitySlot.consultant_user_id == consultant.user_id,
                    AvailabilitySlot.status == "held",
                )
                .order_by(AvailabilitySlot.start_time)
            )
        ).all()
    assert [tuple(h) for h in held] == [(s, s + timedelta(minutes=30)) for s in starts]
    await assert_no_double_booking(session_factory)
