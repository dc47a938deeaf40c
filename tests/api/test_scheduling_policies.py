"""Scheduling policies through the API: the fields of service types and profiles, caps
per service type, and the search and the submit checks agreeing on notice, horizon,
buffers and caps (what the search offers passes the checks, what it leaves out is
refused with a problem naming the policy)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import submission_checks as checks
from api.errors import StartUnavailable
from api.schemas.consultation_requests import ConsultationRequestCreate
from api.submissions import _timings
from core.settings import Settings
from core.vocabulary import SlotStatus
from db.models import ConsultantProfile, ConsultationRequest, ScheduledSession, ServiceType
from tests.api.test_search import SEARCH, add_consultant, add_service_type, add_slots
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

Sessions = async_sessionmaker[AsyncSession]

TODAY = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


async def set_policy(sessions: Sessions, model: Any, key: Any, **values: int | None) -> None:
    async with sessions() as session:
        await session.execute(update(model).where(key).values(**values))
        await session.commit()


async def offered(
    client: httpx.AsyncClient, tokens: TokenFactory, service_type: uuid.UUID, days: int = 20
) -> list[datetime]:
    response = await client.get(
        SEARCH,
        params={
            "service_type_id": str(service_type),
            "from": TODAY.isoformat(),
            "to": (TODAY + timedelta(days=days)).isoformat(),
            "limit": 200,
        },
        headers=tokens.headers("learner"),
    )
    assert response.status_code == 200, response.text
    return [datetime.fromisoformat(item["start_time"]) for item in response.json()["items"]]


async def submit_check(
    sessions: Sessions,
    settings: Settings,
    service_type: uuid.UUID,
    slot: uuid.UUID,
    start: datetime,
) -> checks.Window:
    body = ConsultationRequestCreate(service_type_id=service_type, slot_id=slot, start=start)
    async with sessions() as session:
        row = await session.get(ServiceType, service_type)
        assert row is not None
        return await checks.chosen_start_window(session, body, row, settings, datetime.now(UTC))


# --- fields ---------------------------------------------------------------------------


async def test_service_types_and_profiles_carry_their_policies(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    operator = tokens.headers("operator")
    policy = {
        "buffer_before_minutes": 10,
        "buffer_after_minutes": 15,
        "minimum_notice_minutes": 1440,
        "booking_horizon_days": 30,
        "cancel_cutoff_minutes": 720,
        "reschedule_cutoff_minutes": 1440,
    }
    created = await client.post(
        "/v1/service-types",
        json={"name": f"Buffered {uuid.uuid4()}", "default_duration_minutes": 30, **policy},
        headers=operator,
    )
    assert created.status_code == 201, created.text
    assert {key: created.json()[key] for key in policy} == policy
    cleared = await client.patch(
        f"/v1/service-types/{created.json()['id']}",
        json={"booking_horizon_days": None},
        headers=operator,
    )
    assert cleared.json()["booking_horizon_days"] is None
    assert cleared.json()["buffer_after_minutes"] == 15

    consultant = uuid.uuid4()
    caps = {
        "buffer_before_minutes": 5,
        "buffer_after_minutes": None,
        "max_sessions_per_day": 3,
        "max_sessions_per_week": 10,
    }
    profile = await client.put(
        f"/v1/consultants/{consultant}",
        json=caps,
        headers=tokens.headers("consultant", sub=consultant),
    )
    assert profile.status_code == 201, profile.text
    assert {key: profile.json()[key] for key in caps} == caps


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("buffer_before_minutes", -1),
        ("buffer_after_minutes", 241),
        ("minimum_notice_minutes", -5),
        ("booking_horizon_days", 0),
        ("reschedule_cutoff_minutes", 10**9),
    ],
)
async def test_a_policy_out_of_range_is_a_422(
    client: httpx.AsyncClient, tokens: TokenFactory, field: str, value: int
) -> None:
    response = await client.post(
        "/v1/service-types",
        json={"name": f"Bad {uuid.uuid4()}", "default_duration_minutes": 30, field: value},
        headers=tokens.headers("operator"),
    )
    assert field in str(assert_problem(response, 422))


async def test_caps_per_service_type_are_set_listed_and_removed(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions
) -> None:
    consultant = await add_consultant(session_factory)
    service_type = await add_service_type(session_factory)
    path = f"/v1/consultants/{consultant}/service-limits/{service_type}"
    own = tokens.headers("consultant", sub=consultant)

    put = await client.put(path, json={"max_sessions_per_day": 2}, headers=own)
    assert put.status_code == 200, put.text
    assert (put.json()["max_sessions_per_day"], put.json()["max_sessions_per_week"]) == (2, None)
    listed = await client.get(f"/v1/consultants/{consultant}/service-limits", headers=own)
    assert [item["consultation_service_type_id"] for item in listed.json()] == [str(service_type)]

    someone_else = tokens.headers("consultant", sub=uuid.uuid4())
    assert_problem(await client.put(path, json={}, headers=someone_else), 403)
    assert_problem(await client.put(path, json={"max_sessions_per_day": 0}, headers=own), 422)
    unknown_type = f"/v1/consultants/{consultant}/service-limits/{uuid.uuid4()}"
    assert_problem(await client.put(unknown_type, json={}, headers=own), 404)

    assert (await client.delete(path, headers=own)).status_code == 204
    assert_problem(await client.delete(path, headers=own), 404)


# --- search and submit agree ----------------------------------------------------------


async def test_notice_and_horizon_of_the_type_bound_search_and_submit_alike(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions, settings: Settings
) -> None:
    service_type = await add_service_type(session_factory, minutes=60, specialization=None)
    await set_policy(
        session_factory,
        ServiceType,
        ServiceType.id == service_type,
        minimum_notice_minutes=48 * 60,
        booking_horizon_days=5,
    )
    consultant = await add_consultant(session_factory)
    # One two-hour block a day for ten days, at the same hour as now.
    blocks = [(TODAY + timedelta(days=d), TODAY + timedelta(days=d, hours=2)) for d in range(10)]
    slots = await add_slots(session_factory, consultant, *blocks)

    starts = await offered(client, tokens, service_type)

    now = datetime.now(UTC)
    assert starts
    assert min(starts) >= now + hours(48)
    assert max(starts) <= now + timedelta(days=5)
    for start in starts:
        slot = next(s for s, (a, b) in zip(slots, blocks, strict=True) if a <= start < b)
        window = await submit_check(session_factory, settings, service_type, slot, start)
        assert window.start == start
    for day, reason in ((1, "too_soon"), (6, "beyond_horizon")):
        start = TODAY + timedelta(days=day)
        with pytest.raises(StartUnavailable) as refused:
            await submit_check(session_factory, settings, service_type, slots[day], start)
        assert refused.value.extensions["reason"] == reason


async def test_a_capped_day_and_a_buffer_are_left_out_of_the_search_and_refused_at_submit(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions, settings: Settings
) -> None:
    service_type = await add_service_type(session_factory, minutes=60, specialization=None)
    await set_policy(
        session_factory, ServiceType, ServiceType.id == service_type, buffer_after_minutes=30
    )
    consultant = await add_consultant(session_factory)
    await set_policy(
        session_factory,
        ConsultantProfile,
        ConsultantProfile.consultant_user_id == consultant,
        max_sessions_per_day=1,
    )
    day = (TODAY + timedelta(days=3)).replace(hour=8)
    # Day one: a booked session and a free block; day two: the same free block.
    await add_slots(session_factory, consultant, (day, day + hours(1)), status=SlotStatus.BOOKED)
    await _session_on(session_factory, consultant, service_type, day)
    free_today, free_tomorrow = await add_slots(
        session_factory,
        consultant,
        (day + hours(2), day + hours(4)),
        (day + timedelta(days=1, hours=2), day + timedelta(days=1, hours=4)),
    )

    starts = await offered(client, tokens, service_type)

    tomorrow = day + timedelta(days=1, hours=2)
    # A 60-minute session with 30 minutes after it fits from 10:00 to 10:30 only.
    assert [s for s in starts if s.date() == tomorrow.date()] == [
        tomorrow + timedelta(minutes=15 * n) for n in range(3)
    ]
    assert [s for s in starts if s.date() == day.date()] == []
    with pytest.raises(StartUnavailable) as capped:
        await submit_check(session_factory, settings, service_type, free_today, day + hours(2))
    assert capped.value.extensions["reason"] == "daily_cap"
    with pytest.raises(StartUnavailable) as buffered:
        await submit_check(
            session_factory, settings, service_type, free_tomorrow, tomorrow + hours(1)
        )
    assert buffered.value.extensions["reason"] == "buffer"


async def _session_on(
    sessions: Sessions, consultant: uuid.UUID, service_type: uuid.UUID, start: datetime
) -> None:
    """A scheduled session of ``consultant`` at ``start`` (its request row too)."""
    async with sessions() as session:
        request = ConsultationRequest(
            requester_user_id=uuid.uuid4(),
            consultation_service_type_id=service_type,
            status="scheduled",
        )
        session.add(request)
        await session.flush()
        session.add(
            ScheduledSession(
                consultation_request_id=request.id,
                requester_user_id=request.requester_user_id,
                consultant_user_id=consultant,
                consultation_service_type_id=service_type,
                scheduled_start_time=start,
                scheduled_end_time=start + hours(1),
            )
        )
        await session.commit()


def test_the_workflow_is_given_the_types_notice_and_cutoffs(settings: Settings) -> None:
    plain = ServiceType(name="plain", default_duration_minutes=30)
    own = ServiceType(
        name="own",
        default_duration_minutes=30,
        minimum_notice_minutes=24 * 60,
        cancel_cutoff_minutes=12 * 60,
        reschedule_cutoff_minutes=48 * 60,
    )
    only_cancel = ServiceType(
        name="only cancel", default_duration_minutes=30, cancel_cutoff_minutes=60
    )

    defaults, overridden, cancel_only = (
        _timings(settings, service_type) for service_type in (plain, own, only_cancel)
    )

    assert defaults.minimum_notice == settings.minimum_notice
    assert defaults.requester_cancel_cutoff == settings.requester_cancel_cutoff
    assert defaults.requester_reschedule_cutoff == settings.requester_cancel_cutoff
    assert (
        overridden.minimum_notice,
        overridden.requester_cancel_cutoff,
        overridden.requester_reschedule_cutoff,
    ) == (hours(24), hours(12), hours(48))
    assert cancel_only.requester_reschedule_cutoff == hours(1)
