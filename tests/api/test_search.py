"""/v1/availability/search against a real PostgreSQL, and the plan it gets."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.vocabulary import SlotStatus
from db.availability.search import SearchCriteria, explain, search_bookable_times, search_statement
from db.models import AvailabilitySlot, ConsultantProfile, ServiceType
from tests.support.tokens import TokenFactory

Sessions = async_sessionmaker[AsyncSession]
PROBLEM = "application/problem+json"
SEARCH = "/v1/availability/search"

# Far enough ahead that "now plus minimum notice" never moves the window.
BASE = (datetime.now(UTC) + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


def at(hours: float, day: int = 0) -> datetime:
    return BASE + timedelta(days=day, hours=hours)


async def add_service_type(
    sessions: Sessions,
    *,
    minutes: int = 45,
    specialization: str | None = "careers",
    active: bool = True,
) -> uuid.UUID:
    async with sessions() as session:
        service_type = ServiceType(
            name=f"Coaching {uuid.uuid4()}",
            default_duration_minutes=minutes,
            required_specialization=specialization,
            is_active=active,
        )
        session.add(service_type)
        await session.commit()
        return service_type.id


async def add_consultant(
    sessions: Sessions, *specializations: str, bookable: bool = True
) -> uuid.UUID:
    consultant_id = uuid.uuid4()
    async with sessions() as session:
        session.add(
            ConsultantProfile(
                consultant_user_id=consultant_id,
                specializations=list(specializations),
                is_available_for_booking=bookable,
            )
        )
        await session.commit()
    return consultant_id


async def add_slots(
    sessions: Sessions,
    consultant_id: uuid.UUID,
    *ranges: tuple[datetime, datetime],
    status: SlotStatus = SlotStatus.AVAILABLE,
) -> list[uuid.UUID]:
    rows = [
        {
            "consultant_user_id": consultant_id,
            "start_time": s,
            "end_time": e,
            "status": status.value,
        }
        for s, e in ranges
    ]
    async with sessions() as session:
        ids = list(
            (
                await session.scalars(insert(AvailabilitySlot).returning(AvailabilitySlot.id), rows)
            ).all()
        )
        await session.commit()
    return ids


def params(service_type: uuid.UUID, start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "service_type_id": str(service_type),
        "from": start.isoformat(),
        "to": end.isoformat(),
    } | extra


def summary(items: list[dict[str, Any]]) -> list[tuple[str, datetime, datetime]]:
    return [
        (
            item["consultant_user_id"],
            datetime.fromisoformat(item["start_time"]),
            datetime.fromisoformat(item["end_time"]),
        )
        for item in items
    ]


async def test_earliest_only_finds_where_the_session_fits_in_slot_order(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    service_type = await add_service_type(session_factory)
    a = await add_consultant(session_factory, "careers")
    b = await add_consultant(session_factory, "careers", "finance")
    c = await add_consultant(session_factory, "finance")
    closed = await add_consultant(session_factory, "careers", bookable=False)
    e = await add_consultant(session_factory, "careers")
    f = await add_consultant(session_factory, "careers")
    [a_slot] = await add_slots(session_factory, a, (at(9), at(10)))
    await add_slots(session_factory, a, (at(10), at(10.5)))  # 30 minutes: too short
    await add_slots(session_factory, a, (at(11), at(12)), status=SlotStatus.BOOKED)
    await add_slots(session_factory, a, (at(12), at(13)), status=SlotStatus.UNAVAILABLE)
    await add_slots(session_factory, a, (at(9, day=-1), at(10, day=-1)))  # before the window
    [b_early, b_late] = await add_slots(session_factory, b, (at(8), at(12)), (at(17), at(17.75)))
    await add_slots(session_factory, b, (at(17.75), at(19)))  # would end after `to`
    await add_slots(session_factory, c, (at(9), at(12)))  # lacks the specialization
    await add_slots(session_factory, closed, (at(9), at(12)))  # not taking bookings
    await add_slots(session_factory, e, (at(7), at(9.5)))  # only 30 minutes inside the window
    await add_slots(session_factory, f, (at(8.25), at(9)))  # ends as the window opens

    response = await client.get(
        SEARCH,
        params=params(service_type, at(9), at(18), earliest_only="true"),
        headers=tokens.headers("learner"),
    )

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    minutes = timedelta(minutes=45)
    assert summary(page["items"]) == [
        (str(b), at(9), at(9) + minutes),  # the slot began at 08:00, the window at 09:00
        (str(a), at(9), at(9) + minutes),
        (str(b), at(17), at(17) + minutes),  # fits exactly before `to`
    ]
    first = page["items"][0]
    assert first["slot_id"] == str(b_early)
    assert datetime.fromisoformat(first["slot_start"]) == at(8)
    assert datetime.fromisoformat(first["slot_end"]) == at(12)
    assert [i["slot_id"] for i in page["items"]] == [str(b_early), str(a_slot), str(b_late)]


async def test_filters_by_consultant_and_narrows_by_specialization(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    service_type = await add_service_type(session_factory)
    open_type = await add_service_type(session_factory, specialization=None)
    a = await add_consultant(session_factory, "careers")
    b = await add_consultant(session_factory, "careers", "finance")
    c = await add_consultant(session_factory)
    for consultant in (a, b, c):
        await add_slots(session_factory, consultant, (at(9), at(10)))
    headers = tokens.headers("consultant")

    async def consultants(**extra: Any) -> set[str]:
        type_id = extra.pop("type", service_type)
        response = await client.get(
            SEARCH, params=params(type_id, at(0), at(24), **extra), headers=headers
        )
        assert response.status_code == 200, response.text
        return {item["consultant_user_id"] for item in response.json()["items"]}

    assert await consultants() == {str(a), str(b)}
    assert await consultants(consultant_id=str(a)) == {str(a)}
    assert await consultants(consultant_id=str(c)) == set()
    assert await consultants(specialization="finance") == {str(b)}
    assert await consultants(type=open_type) == {str(a), str(b), str(c)}
    assert await consultants(type=open_type, specialization="finance") == {str(b)}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [({}, 7 * 3 * 3), ({"earliest_only": "true"}, 7 * 3)],
    ids=["every start", "earliest only"],
)
async def test_pages_through_every_bookable_time_once(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: Sessions,
    mode: dict[str, str],
    expected: int,
) -> None:
    service_type = await add_service_type(session_factory, minutes=30)
    for _ in range(3):
        consultant = await add_consultant(session_factory, "careers")
        # Same start times for everyone: the slot id breaks the ties.
        await add_slots(session_factory, consultant, *((at(h), at(h + 1)) for h in range(8, 15)))
    headers = tokens.headers("operator")
    query = params(service_type, at(0), at(24), **mode)

    whole = await client.get(SEARCH, params=query | {"limit": 200}, headers=headers)
    expected_items = [(i["start_time"], i["slot_id"]) for i in whole.json()["items"]]
    assert len(expected_items) == expected
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = (
            await client.get(
                SEARCH,
                params=query | {"limit": 4} | ({"cursor": cursor} if cursor else {}),
                headers=headers,
            )
        ).json()
        seen += [(item["start_time"], item["slot_id"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected_items
    order = [(datetime.fromisoformat(start), slot) for start, slot in seen]
    if mode:
        starts = [datetime.fromisoformat(i["slot_start"]) for i in whole.json()["items"]]
        assert starts == sorted(starts)
    else:
        assert order == sorted(order)


async def test_times_sooner_than_the_minimum_notice_are_not_offered(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    service_type = await add_service_type(session_factory, minutes=30)
    consultant = await add_consultant(session_factory, "careers")
    now = datetime.now(UTC).replace(microsecond=0)
    await add_slots(
        session_factory, consultant, (now - timedelta(hours=1), now + timedelta(hours=5))
    )
    await add_slots(
        session_factory, consultant, (now - timedelta(hours=3), now - timedelta(hours=2))
    )

    response = await client.get(
        SEARCH,
        params=params(service_type, now - timedelta(days=1), now + timedelta(days=1)),
        headers=tokens.headers("learner"),
    )

    items = response.json()["items"]
    start = datetime.fromisoformat(items[0]["start_time"])
    assert now + timedelta(hours=2) <= start < now + timedelta(hours=2, minutes=20)
    assert start.minute % 15 == 0  # the default start grid
    assert start.second == 0
    last = datetime.fromisoformat(items[-1]["start_time"])
    assert last + timedelta(minutes=30) <= now + timedelta(hours=5)


async def test_search_errors_are_problems(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    service_type = await add_service_type(session_factory)
    retired = await add_service_type(session_factory, active=False)
    headers = tokens.headers("learner")
    good = params(service_type, at(9), at(18))
    cases: list[tuple[dict[str, Any], dict[str, str] | None, int]] = [
        (good, None, 401),
        (good, tokens.headers(), 403),
        ({k: v for k, v in good.items() if k != "service_type_id"}, headers, 422),
        ({k: v for k, v in good.items() if k != "to"}, headers, 422),
        (good | {"service_type_id": "not-a-uuid"}, headers, 422),
        (good | {"service_type_id": str(uuid.uuid4())}, headers, 404),
        (good | {"service_type_id": str(retired)}, headers, 422),
        (good | {"from": "2030-01-01T09:00:00"}, headers, 422),
        (good | {"to": at(8).isoformat()}, headers, 422),
        (good | {"to": at(0, day=63).isoformat()}, headers, 422),
        (good | {"limit": 0}, headers, 422),
        (good | {"limit": 1000}, headers, 422),
        (good | {"specialization": ""}, headers, 422),
        (good | {"cursor": "%%%"}, headers, 400),
        (good | {"cursor": "eyJpZCI6IjEiLCJzdGFydCI6IjIwMjYifQ"}, headers, 400),
    ]
    for query, auth, status in cases:
        response = await client.get(SEARCH, params=query, headers=auth or {})
        assert response.status_code == status, (query, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)


# --- The plan -----------------------------------------------------------------------


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


async def _fill(sessions: Sessions, consultants: int, days: range) -> None:
    """Hourly slots 08:00-16:00 every day for every consultant; every fourth one booked,
    every third consultant in another field."""
    ids = [uuid.uuid4() for _ in range(consultants)]
    profiles = [
        {"consultant_user_id": cid, "specializations": ["finance"] if i % 3 == 0 else ["careers"]}
        for i, cid in enumerate(ids)
    ]
    slots = [
        {
            "consultant_user_id": cid,
            "start_time": at(hour, day=day),
            "end_time": at(hour + 1, day=day),
            "status": SlotStatus.BOOKED.value
            if (day + hour) % 4 == 0
            else SlotStatus.AVAILABLE.value,
        }
        for cid in ids
        for day in days
        for hour in range(8, 16)
    ]
    async with sessions() as session:
        await session.execute(insert(ConsultantProfile), profiles)
        await session.execute(insert(AvailabilitySlot), slots)
        await session.commit()
    async with sessions() as session:
        await session.execute(text("ANALYZE consultant_availability_slots, consultant_profiles"))
        await session.commit()


@pytest.mark.parametrize("specializations", [(), ("careers",)])
@pytest.mark.parametrize("page", ["first", "later"])
async def test_search_walks_the_partial_index_in_order(
    session_factory: Sessions, specializations: tuple[str, ...], page: str
) -> None:
    await _fill(session_factory, consultants=40, days=range(-20, 30))  # 16,000 slots
    criteria = SearchCriteria(
        window_start=at(0),
        window_end=at(0, day=7),
        duration=timedelta(minutes=45),
        specializations=specializations,
        limit=51,
    )

    async with session_factory() as session:
        if page == "later":
            last = (await search_bookable_times(session, criteria))[-1]
            criteria = replace(criteria, after=(last.slot_start, last.slot_id))
        [document] = await explain(session, search_statement(criteria))
    nodes = _nodes(document["Plan"])

    plan = json.dumps(document, indent=1)
    assert nodes[0]["Node Type"] == "Limit", plan
    scans = [n for n in nodes if n.get("Relation Name") == "consultant_availability_slots"]
    assert [n.get("Index Name") for n in scans] == ["ix_availability_slots_available_start"], plan
    assert scans[0]["Node Type"] in {"Index Scan", "Index Only Scan"}, plan  # in order
    assert not any(node["Node Type"] == "Sort" for node in nodes), plan


async def test_search_plans_with_the_actual_values(session_factory: Sessions) -> None:
    """A generic plan of the prepared statement would have to guess the window and the
    specialization's rarity; the search forces a plan for the values at hand."""
    criteria = SearchCriteria(window_start=at(0), window_end=at(24), duration=timedelta(hours=1))
    async with session_factory() as session:
        assert await search_bookable_times(session, criteria) == []
        mode = await session.scalar(text("SHOW plan_cache_mode"))
    assert mode == "force_custom_plan"
