"""/v1/consultants/{id}/availability against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.vocabulary import SlotStatus
from db.models import AvailabilitySlot, ConsultantProfile, ConsultationRequest, ServiceType
from tests.support.tokens import TokenFactory

Sessions = async_sessionmaker[AsyncSession]
PROBLEM = "application/problem+json"
DAY = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday


def at(hour: float, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour)


def window(start: datetime, end: datetime) -> dict[str, str]:
    return {"start_time": start.isoformat(), "end_time": end.isoformat()}


def url(consultant_id: uuid.UUID, slot_id: uuid.UUID | None = None) -> str:
    base = f"/v1/consultants/{consultant_id}/availability"
    return base if slot_id is None else f"{base}/{slot_id}"


async def add_consultant(
    sessions: Sessions, *, bookable: bool = True, time_zone: str = "UTC"
) -> uuid.UUID:
    consultant_id = uuid.uuid4()
    async with sessions() as session:
        session.add(
            ConsultantProfile(
                consultant_user_id=consultant_id,
                display_name="Dr. Test",
                is_available_for_booking=bookable,
                time_zone=time_zone,
            )
        )
        await session.commit()
    return consultant_id


async def add_slot(
    sessions: Sessions,
    consultant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    status: SlotStatus = SlotStatus.AVAILABLE,
) -> uuid.UUID:
    """A slot written directly; held ones get a real request as their holder."""
    async with sessions() as session:
        holder = None
        if status is SlotStatus.HELD:
            holder = await _add_request(session, consultant_id)
        slot = AvailabilitySlot(
            consultant_user_id=consultant_id,
            start_time=start,
            end_time=end,
            status=status.value,
            held_by_request_id=holder,
        )
        session.add(slot)
        await session.commit()
        return slot.id


async def _add_request(session: AsyncSession, consultant_id: uuid.UUID) -> uuid.UUID:
    service_type = ServiceType(name=f"type-{uuid.uuid4()}", default_duration_minutes=30)
    session.add(service_type)
    await session.flush()
    request = ConsultationRequest(
        requester_user_id=uuid.uuid4(),
        consultation_service_type_id=service_type.id,
        assigned_consultant_user_id=consultant_id,
    )
    session.add(request)
    await session.flush()
    return request.id


async def slot_count(sessions: Sessions, consultant_id: uuid.UUID) -> int:
    async with sessions() as session:
        query = select(func.count()).where(AvailabilitySlot.consultant_user_id == consultant_id)
        return int((await session.scalar(query)) or 0)


def owner(tokens: TokenFactory, consultant_id: uuid.UUID) -> dict[str, str]:
    return tokens.headers("consultant", sub=consultant_id)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- Creating -----------------------------------------------------------------------


async def test_consultant_publishes_one_slot(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    body = {"start_time": "2026-12-07T09:00:00+01:00", "end_time": "2026-12-07T12:00:00+01:00"}

    response = await client.post(url(consultant), json=body, headers=owner(tokens, consultant))

    assert response.status_code == 201, response.text
    [slot] = response.json()["items"]
    assert slot["consultant_user_id"] == str(consultant)
    assert slot["status"] == "available"
    assert datetime.fromisoformat(slot["start_time"]) == at(8)
    assert datetime.fromisoformat(slot["end_time"]) == at(11)
    assert slot["held_by_request_id"] is None


async def test_many_slots_are_created_in_start_order(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    slots = [window(at(14), at(15)), window(at(9), at(10)), window(at(10), at(11))]  # touching

    response = await client.post(
        url(consultant), json={"slots": slots}, headers=tokens.headers("operator")
    )

    assert response.status_code == 201, response.text
    starts = [datetime.fromisoformat(s["start_time"]) for s in response.json()["items"]]
    assert starts == [at(9), at(10), at(14)]


@pytest.mark.parametrize(
    "body",
    [
        {"start_time": "2026-12-07T09:00:00", "end_time": "2026-12-07T10:00:00"},  # naive
        {"slots": [{"start_time": "2026-12-07T09:00:00", "end_time": "2026-12-07T10:00:00Z"}]},
        {"start_time": "2026-12-07T10:00:00Z", "end_time": "2026-12-07T10:00:00Z"},
        {"start_time": "2026-12-07T10:00:00Z", "end_time": "2026-12-08T10:00:01Z"},  # > 24 h
        {"start_time": "9999-12-31T23:00:00-05:00", "end_time": "9999-12-31T23:30:00-05:00"},
        {"start_time": "2026-12-07T10:00:00Z"},
        {"start_time": "2026-12-07T10:00:00Z", "end_time": "2026-12-07T11:00Z", "x": 1},
        {"slots": []},
        {"rrule": "FREQ=DAILY", "start_local": "2026-12-07T09:00+01:00", "duration_minutes": 60},
        {"rrule": "FREQ=DAILY;COUNT=2", "start_local": "2026-12-07T09:00", "duration_minutes": 0},
        {
            "rrule": "FREQ=DAILY",
            "start_local": "2026-12-07T09:00",
            "duration_minutes": 60,
            "count": 2,
            "until": "2026-12-31",
        },
        {
            "rrule": "FREQ=DAILY",
            "start_local": "2026-12-07T09:00",
            "duration_minutes": 60,
            "count": 2,
            "time_zone": "Mars/Olympus",
        },
        [],
        "nonsense",
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions, body: Any
) -> None:
    consultant = await add_consultant(session_factory)

    response = await client.post(url(consultant), json=body, headers=owner(tokens, consultant))

    assert_problem(response, 422)
    assert await slot_count(session_factory, consultant) == 0


async def test_overlap_with_existing_slots_is_409_naming_them_and_creates_nothing(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    booked = await add_slot(session_factory, consultant, at(9), at(10), SlotStatus.BOOKED)
    other = await add_consultant(session_factory)
    await add_slot(session_factory, other, at(9), at(12))  # someone else's: no conflict
    slots = [window(at(7), at(8)), window(at(9.5), at(11))]

    response = await client.post(
        url(consultant), json={"slots": slots}, headers=owner(tokens, consultant)
    )

    body = assert_problem(response, 409)
    assert body["type"].endswith("/slot-overlap")
    assert body["conflict_count"] == 1
    [conflict] = body["conflicts"]
    assert conflict["id"] == str(booked)
    assert conflict["status"] == "booked"
    assert datetime.fromisoformat(conflict["start_time"]) == at(9)
    assert datetime.fromisoformat(conflict["end_time"]) == at(10)
    assert body["overlapping_in_request"] == []
    assert await slot_count(session_factory, consultant) == 1


async def test_overlap_among_the_posted_slots_is_409(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    slots = [window(at(9), at(11)), window(at(10), at(12)), window(at(13), at(14))]

    response = await client.post(
        url(consultant), json={"slots": slots}, headers=owner(tokens, consultant)
    )

    body = assert_problem(response, 409)
    assert body["conflicts"] == []
    assert len(body["overlapping_in_request"]) == 2
    assert await slot_count(session_factory, consultant) == 0


async def test_twenty_concurrent_overlapping_posts_give_one_201(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    headers = owner(tokens, consultant)
    bodies = [
        window(at(9) + timedelta(minutes=i), at(11) + timedelta(minutes=i)) for i in range(20)
    ]

    responses = await asyncio.gather(
        *(client.post(url(consultant), json=body, headers=headers) for body in bodies)
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19
    for response in responses:
        if response.status_code == 409:
            assert len(assert_problem(response, 409)["conflicts"]) == 1
    assert await slot_count(session_factory, consultant) == 1


async def test_concurrent_overlapping_batches_never_fail_with_500(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    headers = owner(tokens, consultant)

    # Each batch overlaps every other one on several slots, in different orders.
    def batch(i: int) -> dict[str, Any]:
        shift = timedelta(minutes=i)
        slots = [window(at(h) + shift, at(h + 1) + shift) for h in (8, 12, 16)]
        return {"slots": slots if i % 2 else slots[::-1]}

    bodies = [batch(i) for i in range(10)]

    responses = await asyncio.gather(
        *(client.post(url(consultant), json=body, headers=headers) for body in bodies)
    )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert await slot_count(session_factory, consultant) == 3


# --- Recurring rules ----------------------------------------------------------------


async def test_weekly_rule_keeps_0900_berlin_across_the_dst_change(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory, time_zone="Europe/Berlin")
    body = {
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0",
        "start_local": "2026-10-19T09:00",
        "duration_minutes": 120,
        "until": "2026-10-28",
    }

    response = await client.post(url(consultant), json=body, headers=owner(tokens, consultant))

    assert response.status_code == 201, response.text
    items = response.json()["items"]
    starts = [datetime.fromisoformat(s["start_time"]) for s in items]
    assert starts == [
        datetime(2026, 10, 19, 7, tzinfo=UTC),  # before 25 October: CEST
        datetime(2026, 10, 21, 7, tzinfo=UTC),
        datetime(2026, 10, 26, 8, tzinfo=UTC),  # after: CET
        datetime(2026, 10, 28, 8, tzinfo=UTC),
    ]
    ends = [datetime.fromisoformat(s["end_time"]) for s in items]
    assert [e - s for s, e in zip(starts, ends, strict=True)] == [timedelta(hours=2)] * 4


async def test_rule_time_zone_overrides_the_profile(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory, time_zone="UTC")
    body = {
        "rrule": "RRULE:FREQ=DAILY;COUNT=2",
        "start_local": "2026-07-01T09:00",
        "duration_minutes": 30,
        "time_zone": "America/New_York",
    }

    response = await client.post(url(consultant), json=body, headers=owner(tokens, consultant))

    assert response.status_code == 201, response.text
    starts = [s["start_time"] for s in response.json()["items"]]
    assert [datetime.fromisoformat(s).hour for s in starts] == [13, 13]  # EDT, UTC-4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": 1001}, "At most 1000"),
        ({"until": "2028-01-01"}, "horizon"),
        ({"rrule": "FREQ=WEEKLY", "until": "2027-12-03"}, "horizon"),
        ({"rrule": "FREQ=HOURLY", "until": "2027-01-31"}, "more than 1000"),
        ({}, "needs a bound"),
        ({"rrule": "FREQ=SECONDLY", "count": 3}, "FREQ"),
        ({"rrule": "DTSTART:20261201T090000Z", "count": 3}, "DTSTART"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=FUNDAY", "count": 3}, "not a valid RRULE"),
    ],
)
async def test_recurrence_limits_are_422(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: Sessions,
    changes: dict[str, Any],
    message: str,
) -> None:
    consultant = await add_consultant(session_factory, time_zone="Europe/Berlin")
    body = {"rrule": "FREQ=DAILY", "start_local": "2026-12-01T09:00", "duration_minutes": 30}

    response = await client.post(
        url(consultant), json=body | changes, headers=owner(tokens, consultant)
    )

    assert message in assert_problem(response, 422)["detail"]
    assert await slot_count(session_factory, consultant) == 0


async def test_profile_with_an_unknown_time_zone_needs_an_explicit_one(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory, time_zone="Atlantis/Capital")
    body = {"rrule": "FREQ=DAILY", "start_local": "2026-12-01T09:00", "duration_minutes": 30}

    response = await client.post(
        url(consultant), json=body | {"count": 2}, headers=owner(tokens, consultant)
    )
    assert "time_zone" in assert_problem(response, 422)["detail"]

    response = await client.post(
        url(consultant),
        json=body | {"count": 2, "time_zone": "Europe/Paris"},
        headers=owner(tokens, consultant),
    )
    assert response.status_code == 201, response.text


async def test_recurring_slots_overlapping_existing_ones_are_409(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    existing = await add_slot(session_factory, consultant, at(10, day=2), at(11, day=2))
    body = {
        "rrule": "FREQ=DAILY;COUNT=5",
        "start_local": "2026-12-07T09:00",
        "duration_minutes": 90,
    }

    response = await client.post(url(consultant), json=body, headers=owner(tokens, consultant))

    assert [c["id"] for c in assert_problem(response, 409)["conflicts"]] == [str(existing)]
    assert await slot_count(session_factory, consultant) == 1


# --- Who may create -----------------------------------------------------------------


async def test_creating_needs_a_token(client: httpx.AsyncClient, session_factory: Sessions) -> None:
    consultant = await add_consultant(session_factory)
    response = await client.post(url(consultant), json=window(at(9), at(10)))
    assert_problem(response, 401)


@pytest.mark.parametrize("roles", [("learner",), ("consultant",), ()])
async def test_only_the_consultant_or_an_operator_creates(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: Sessions,
    roles: tuple[str, ...],
) -> None:
    consultant = await add_consultant(session_factory)
    # Another consultant, a learner, or a caller without a role (even with the same id
    # as the consultant, a learner token does not manage the calendar).
    sub = uuid.uuid4() if roles == ("consultant",) else consultant
    response = await client.post(
        url(consultant), json=window(at(9), at(10)), headers=tokens.headers(*roles, sub=sub)
    )
    assert_problem(response, 403)


async def test_unknown_consultant_is_404(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    nobody = uuid.uuid4()
    for headers in (tokens.headers("operator"), owner(tokens, nobody)):
        response = await client.post(url(nobody), json=window(at(9), at(10)), headers=headers)
        assert_problem(response, 404)


# --- Listing ------------------------------------------------------------------------


async def _calendar(sessions: Sessions, consultant: uuid.UUID) -> dict[str, uuid.UUID]:
    return {
        "available": await add_slot(sessions, consultant, at(8), at(9)),
        "booked": await add_slot(sessions, consultant, at(9), at(10), SlotStatus.BOOKED),
        "held": await add_slot(sessions, consultant, at(10), at(11), SlotStatus.HELD),
        "unavailable": await add_slot(sessions, consultant, at(11), at(12), SlotStatus.UNAVAILABLE),
        "tomorrow": await add_slot(sessions, consultant, at(8, day=1), at(9, day=1)),
    }


async def test_owner_lists_all_slots_by_range_and_status(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    slots = await _calendar(session_factory, consultant)
    headers = owner(tokens, consultant)

    everything = await client.get(url(consultant), headers=headers)
    assert [s["id"] for s in everything.json()["items"]] == [str(v) for v in slots.values()]

    today = await client.get(
        url(consultant),
        params={"from": at(8.5).isoformat(), "to": at(10.5).isoformat()},
        headers=headers,
    )
    assert [s["status"] for s in today.json()["items"]] == ["available", "booked", "held"]

    some = await client.get(
        url(consultant), params=[("status", "held"), ("status", "unavailable")], headers=headers
    )
    assert [s["id"] for s in some.json()["items"]] == [
        str(slots["held"]),
        str(slots["unavailable"]),
    ]


async def test_listing_pages_through_every_slot_once(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    created = [await add_slot(session_factory, consultant, at(h), at(h + 0.5)) for h in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = await client.get(
            url(consultant), params=params, headers=tokens.headers("operator")
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(slot) for slot in created]


async def test_learners_see_only_available_slots_of_bookable_consultants(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    slots = await _calendar(session_factory, consultant)
    for headers in (tokens.headers("learner"), tokens.headers("consultant")):
        response = await client.get(url(consultant), headers=headers)
        assert response.status_code == 200, response.text
        ids = [s["id"] for s in response.json()["items"]]
        assert ids == [str(slots["available"]), str(slots["tomorrow"])]
        explicit = await client.get(
            url(consultant), params={"status": "available"}, headers=headers
        )
        assert explicit.json()["items"] == response.json()["items"]
        assert_problem(
            await client.get(url(consultant), params={"status": "booked"}, headers=headers), 403
        )

    closed = await add_consultant(session_factory, bookable=False)
    assert_problem(await client.get(url(closed), headers=tokens.headers("learner")), 403)
    assert (await client.get(url(closed), headers=owner(tokens, closed))).status_code == 200


async def test_listing_errors(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    headers = owner(tokens, consultant)
    assert_problem(await client.get(url(consultant)), 401)
    assert_problem(await client.get(url(consultant), headers=tokens.headers()), 403)
    assert_problem(await client.get(url(uuid.uuid4()), headers=tokens.headers("operator")), 404)
    for params in (
        {"from": "2026-12-07T09:00:00"},  # naive
        {"from": at(10).isoformat(), "to": at(9).isoformat()},
        {"status": "lost"},
        {"limit": 0},
    ):
        assert_problem(await client.get(url(consultant), params=params, headers=headers), 422)
    for cursor in ("garbage!", "eyJhIjoxfQ", "eyJpZCI6IngiLCJzdGFydCI6InkifQ"):
        response = await client.get(url(consultant), params={"cursor": cursor}, headers=headers)
        assert_problem(response, 400)


# --- Opening, closing, deleting -----------------------------------------------------


async def test_owner_closes_and_reopens_a_free_slot(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    slot = await add_slot(session_factory, consultant, at(9), at(10))
    headers = owner(tokens, consultant)

    closed = await client.patch(
        url(consultant, slot), json={"status": "unavailable"}, headers=headers
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "unavailable"
    again = await client.patch(
        url(consultant, slot), json={"status": "unavailable"}, headers=headers
    )
    assert again.json()["status"] == "unavailable"
    reopened = await client.patch(
        url(consultant, slot), json={"status": "available"}, headers=tokens.headers("operator")
    )
    assert reopened.json()["status"] == "available"


@pytest.mark.parametrize("status", [SlotStatus.HELD, SlotStatus.BOOKED])
async def test_held_or_booked_slots_cannot_be_changed_or_deleted(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions, status: SlotStatus
) -> None:
    consultant = await add_consultant(session_factory)
    slot = await add_slot(session_factory, consultant, at(9), at(10), status)
    headers = owner(tokens, consultant)

    patched = await client.patch(
        url(consultant, slot), json={"status": "available"}, headers=headers
    )
    assert assert_problem(patched, 409)["slot_status"] == status.value
    assert_problem(await client.delete(url(consultant, slot), headers=headers), 409)
    async with session_factory() as session:
        stored = await session.get(AvailabilitySlot, slot)
        assert stored is not None
        assert stored.status == status.value


@pytest.mark.parametrize("target", ["held", "booked", "free", None])
async def test_only_available_and_unavailable_are_targets(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions, target: str | None
) -> None:
    consultant = await add_consultant(session_factory)
    slot = await add_slot(session_factory, consultant, at(9), at(10))
    response = await client.patch(
        url(consultant, slot), json={"status": target}, headers=owner(tokens, consultant)
    )
    assert_problem(response, 422)


async def test_owner_deletes_a_free_slot(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    free = await add_slot(session_factory, consultant, at(9), at(10))
    closed = await add_slot(session_factory, consultant, at(10), at(11), SlotStatus.UNAVAILABLE)

    for slot in (free, closed):
        response = await client.delete(url(consultant, slot), headers=owner(tokens, consultant))
        assert response.status_code == 204, response.text
        assert response.content == b""
    assert await slot_count(session_factory, consultant) == 0
    gone = await client.delete(url(consultant, free), headers=owner(tokens, consultant))
    assert_problem(gone, 404)


async def test_changing_slots_needs_the_owner_and_the_right_consultant(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    other = await add_consultant(session_factory)
    slot = await add_slot(session_factory, consultant, at(9), at(10))
    body = {"status": "unavailable"}

    assert_problem(await client.patch(url(consultant, slot), json=body), 401)
    assert_problem(await client.delete(url(consultant, slot)), 401)
    for headers in (owner(tokens, other), tokens.headers("learner", sub=consultant)):
        assert_problem(await client.patch(url(consultant, slot), json=body, headers=headers), 403)
        assert_problem(await client.delete(url(consultant, slot), headers=headers), 403)
    # The slot exists, but not in the other consultant's calendar.
    for target in (url(other, slot), url(consultant, uuid.uuid4())):
        assert_problem(
            await client.patch(target, json=body, headers=tokens.headers("operator")), 404
        )
        assert_problem(await client.delete(target, headers=tokens.headers("operator")), 404)
    assert await slot_count(session_factory, consultant) == 1


async def test_openapi_documents_the_three_bodies(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    post = schema["paths"]["/v1/consultants/{user_id}/availability"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"single", "batch", "recurring"}
    assert "409" in post["responses"]
