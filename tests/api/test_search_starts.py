"""Every bookable start through /v1/availability/search: the grid on the consultant's
clock (also across a daylight-saving change), the merge of many slots' starts in
(start, slot id) order, pages, and grouping by day."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.start_grid import StartGrid
from db.models import ConsultantProfile, ServiceType
from tests.api.test_search import BASE, SEARCH, add_consultant, add_service_type, add_slots, at
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

Sessions = async_sessionmaker[AsyncSession]


def params(service_type: uuid.UUID, start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "service_type_id": str(service_type),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "limit": 200,
    } | extra


async def set_zone(sessions: Sessions, consultant: uuid.UUID, zone: str) -> None:
    async with sessions() as session:
        await session.execute(
            update(ConsultantProfile)
            .where(ConsultantProfile.consultant_user_id == consultant)
            .values(time_zone=zone)
        )
        await session.commit()


async def set_step(sessions: Sessions, service_type: uuid.UUID, minutes: int) -> None:
    async with sessions() as session:
        await session.execute(
            update(ServiceType)
            .where(ServiceType.id == service_type)
            .values(start_interval_minutes=minutes)
        )
        await session.commit()


def next_clock_change(zone: ZoneInfo, after: datetime) -> datetime:
    """The first whole hour (UTC) from which ``zone``'s offset differs from the hour
    before: a daylight-saving change ahead of ``after``."""
    hour = after.replace(minute=0, second=0, microsecond=0)
    for _ in range(24 * 400):
        following = hour + timedelta(hours=1)
        if hour.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            return following
        hour = following
    raise AssertionError(f"{zone} does not change its clock")


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("minutes", [30, 60])
async def test_a_three_hour_block_across_a_clock_change_offers_every_step_start(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: Sessions,
    zone_name: str,
    minutes: int,
) -> None:
    zone = ZoneInfo(zone_name)
    change = next_clock_change(zone, BASE)
    block_start, block_end = change - timedelta(hours=1), change + timedelta(hours=2)
    service_type = await add_service_type(session_factory, minutes=minutes, specialization=None)
    consultant = await add_consultant(session_factory)
    await set_zone(session_factory, consultant, zone_name)
    await add_slots(session_factory, consultant, (block_start, block_end))

    response = await client.get(
        SEARCH,
        params=params(service_type, block_start - timedelta(days=1), block_end + timedelta(days=1)),
        headers=tokens.headers("learner"),
    )

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    starts = [datetime.fromisoformat(item["start_time"]) for item in items]
    # The clocks jump by an hour, so a quarter-hour grid is a quarter hour in UTC too.
    quarter = timedelta(minutes=15)
    expected = [block_start + n * quarter for n in range(int((3 * 60 - minutes) / 15) + 1)]
    assert starts == expected
    local = [datetime.fromisoformat(item["consultant_local"]["start_time"]) for item in items]
    assert {item["consultant_local"]["time_zone"] for item in items} == {zone_name}
    assert [moment.astimezone(UTC) for moment in local] == starts
    assert all(moment.minute % 15 == 0 and moment.second == 0 for moment in local)
    assert len({moment.utcoffset() for moment in local}) == 2  # both sides of the change
    assert [moment.utcoffset() for moment in local] == [
        s.astimezone(zone).utcoffset() for s in starts
    ]
    ends = [datetime.fromisoformat(item["consultant_local"]["end_time"]) for item in items]
    assert [end - start for start, end in zip(local, ends, strict=True)] == [
        timedelta(minutes=minutes)
    ] * len(items)


async def test_the_step_is_the_service_types_own_on_the_consultants_clock(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    """Hourly starts in Kathmandu (UTC+05:45) fall at a quarter past in UTC."""
    service_type = await add_service_type(session_factory, minutes=30, specialization=None)
    await set_step(session_factory, service_type, 60)
    consultant = await add_consultant(session_factory)
    await set_zone(session_factory, consultant, "Asia/Kathmandu")
    await add_slots(session_factory, consultant, (at(8), at(11)))

    response = await client.get(
        SEARCH, params=params(service_type, at(0), at(24)), headers=tokens.headers("learner")
    )

    starts = [datetime.fromisoformat(item["start_time"]) for item in response.json()["items"]]
    assert starts == [at(8.25), at(9.25), at(10.25)]


async def test_the_starts_of_many_slots_merge_in_order_on_every_page(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    """Random slots of consultants in different zones, long ones straddling short ones:
    the search answers exactly the starts computed slot by slot, sorted by (start,
    slot id), and pages of seven add up to the same list."""
    rng = random.Random(16)
    service_type = await add_service_type(session_factory, minutes=30, specialization=None)
    zones = ["UTC", "Asia/Kathmandu", "America/St_Johns", "Europe/Berlin"]
    published: list[tuple[uuid.UUID, datetime, datetime, str]] = []
    for number in range(8):
        consultant = await add_consultant(session_factory)
        zone = zones[number % len(zones)]
        await set_zone(session_factory, consultant, zone)
        cursor = at(6) + timedelta(minutes=rng.randrange(0, 120))
        while cursor < at(20):
            length = timedelta(minutes=rng.choice([20, 35, 60, 95, 180, 300]))
            [slot] = await add_slots(session_factory, consultant, (cursor, cursor + length))
            published.append((slot, cursor, cursor + length, zone))
            cursor += length + timedelta(minutes=rng.choice([0, 5, 40]))
    window_start, window_end = at(7), at(19)
    expected = sorted(
        (start, slot)
        for slot, slot_start, slot_end, zone in published
        for start in StartGrid(15, ZoneInfo(zone)).starts(
            max(slot_start, window_start), min(slot_end, window_end) - timedelta(minutes=30)
        )
    )
    headers = tokens.headers("learner")
    query = params(service_type, window_start, window_end)

    pages: list[list[tuple[datetime, uuid.UUID]]] = []
    cursor_value = None
    while True:
        page = (
            await client.get(
                SEARCH,
                params=query | {"limit": 7} | ({"cursor": cursor_value} if cursor_value else {}),
                headers=headers,
            )
        ).json()
        pages.append(
            [
                (datetime.fromisoformat(i["start_time"]), uuid.UUID(i["slot_id"]))
                for i in page["items"]
            ]
        )
        cursor_value = page["next_cursor"]
        if cursor_value is None:
            break

    assert len(expected) > 200
    assert [found for page in pages for found in page] == expected
    assert all(len(page) == 7 for page in pages[:-1])


async def test_group_by_day_groups_a_page_by_the_days_of_a_zone(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    service_type = await add_service_type(session_factory, minutes=60, specialization=None)
    consultant = await add_consultant(session_factory)
    await add_slots(session_factory, consultant, (at(13), at(15)), (at(23), at(25)))
    headers = tokens.headers("learner")
    query = params(service_type, at(0), at(48), group_by="day")

    in_utc = (await client.get(SEARCH, params=query, headers=headers)).json()
    in_tokyo = (
        await client.get(SEARCH, params=query | {"time_zone": "Asia/Tokyo"}, headers=headers)
    ).json()

    def days(body: dict[str, Any]) -> list[tuple[str, int]]:
        return [(day["date"], len(day["items"])) for day in body["days"]]

    first, second = BASE.date(), (BASE + timedelta(days=1)).date()
    assert in_utc["time_zone"] == "UTC"
    # Starts 13:00-14:00 and 23:00-23:45 UTC on the first day, 00:00 on the second.
    assert days(in_utc) == [(first.isoformat(), 5 + 4), (second.isoformat(), 1)]
    # Tokyo is UTC+9: 13:00-14:00 UTC is 22:00-23:00 there, 23:00 UTC the next morning.
    assert days(in_tokyo) == [(first.isoformat(), 5), (second.isoformat(), 5)]
    assert in_tokyo["next_cursor"] is None


async def test_search_options_that_do_not_go_together_are_problems(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    service_type = await add_service_type(session_factory, minutes=30, specialization=None)
    consultant = await add_consultant(session_factory)
    await add_slots(session_factory, consultant, (at(8), at(11)))
    headers = tokens.headers("learner")
    query = params(service_type, at(0), at(24), limit=2)
    every = (await client.get(SEARCH, params=query, headers=headers)).json()["next_cursor"]
    earliest = (
        await client.get(SEARCH, params=query | {"earliest_only": "true"}, headers=headers)
    ).json()["next_cursor"]
    assert every
    assert earliest is None  # one slot: its earliest start is the only item

    cases: list[tuple[dict[str, Any], int]] = [
        (query | {"group_by": "day", "earliest_only": "true"}, 422),
        (query | {"group_by": "week"}, 422),
        (query | {"group_by": "day", "time_zone": "Mars/Olympus"}, 422),
        (query | {"group_by": "day", "time_zone": "../../etc/passwd"}, 422),
        (query | {"earliest_only": "true", "cursor": every}, 400),  # another list's cursor
    ]
    for case, status in cases:
        assert_problem(await client.get(SEARCH, params=case, headers=headers), status)
