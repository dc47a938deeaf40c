"""/v1/sessions without a worker: who sees which sessions and who may change them.
(Cancelling, moving and no-shows against the real workflow are in tests/e2e.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ScheduledSession
from tests.activities.builders import Backend, future
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

URL = "/v1/sessions"


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)


async def _session(
    backend: Backend, learner: uuid.UUID, consultant: uuid.UUID, days: float
) -> uuid.UUID:
    service_type = await backend.service_type()
    start = future(days)
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(
        service_type,
        window_start=start,
        window_end=start + timedelta(hours=1),
        requester_id=learner,
    )
    reserved = await backend.book(request_id, slot, consultant, start)
    return reserved.session_id


async def test_each_role_sees_its_own_sessions(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    consultant, other = await backend.consultant(), await backend.consultant()
    later = await _session(backend, learner, consultant, days=4)
    sooner = await _session(backend, learner, other, days=3)
    theirs = await _session(backend, uuid.uuid4(), other, days=5)

    async def listed(*roles: str, sub: uuid.UUID, **params: Any) -> list[str]:
        response = await client.get(URL, params=params, headers=tokens.headers(*roles, sub=sub))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed("learner", sub=learner) == [str(sooner), str(later)]  # by start
    assert await listed("consultant", sub=other) == [str(sooner), str(theirs)]
    assert await listed("consultant", sub=other, **{"from": future(4).isoformat()}) == [str(theirs)]
    assert await listed("learner", sub=learner, status="completed") == []
    everything = await listed("operator", sub=uuid.uuid4(), limit=2)
    assert everything == [str(sooner), str(later)]
    assert_problem(
        await client.get(URL, params={"cursor": "x"}, headers=tokens.headers("operator")), 400
    )


async def test_one_session_carries_its_join_link_for_its_parties_only(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner, consultant = uuid.uuid4(), await backend.consultant()
    session_id = await _session(backend, learner, consultant, days=3)
    async with session_factory() as session:
        await session.execute(
            update(ScheduledSession)
            .where(ScheduledSession.id == session_id)
            .values(meeting_platform_join_url="https://meet.example.test/room")
        )
        await session.commit()

    for headers in (
        tokens.headers("learner", sub=learner),
        tokens.headers("consultant", sub=consultant),
        tokens.headers("operator"),
    ):
        seen = await client.get(f"{URL}/{session_id}", headers=headers)
        assert seen.status_code == 200, seen.text
        assert seen.json()["join_url"] == "https://meet.example.test/room"
    for headers in (tokens.headers("learner"), tokens.headers("consultant")):
        assert_problem(await client.get(f"{URL}/{session_id}", headers=headers), 404)


async def test_changes_are_checked_against_the_stored_session_first(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner = uuid.uuid4()
    consultant, other = await backend.consultant(), await backend.consultant()
    session_id = await _session(backend, learner, consultant, days=3)
    finished = await _session(backend, learner, consultant, days=4)
    async with session_factory() as session:
        await session.execute(
            update(ScheduledSession)
            .where(ScheduledSession.id == finished)
            .values(status="cancelled_by_user")
        )
        await session.commit()
    foreign_slot = await backend.slot(other, future(6))
    own_slot = await backend.slot(consultant, future(6))

    def act(target: uuid.UUID, action: str, *roles: str, sub: uuid.UUID, **body: Any) -> Any:
        return client.post(
            f"{URL}/{target}/{action}", json=body, headers=tokens.headers(*roles, sub=sub)
        )

    assert_problem(await act(session_id, "cancel", "learner", sub=uuid.uuid4()), 404)
    assert_problem(await act(session_id, "cancel", "consultant", sub=consultant), 422)
    assert_problem(await act(session_id, "cancel", "learner", sub=learner, reason="?"), 422)
    done = assert_problem(await act(finished, "cancel", "learner", sub=learner), 409)
    assert done["type"].endswith("/invalid-state")
    assert_problem(
        await act(session_id, "reschedule", "learner", sub=learner, slot_id=str(uuid.uuid4())),
        404,
    )
    assert_problem(
        await act(session_id, "reschedule", "learner", sub=learner, slot_id=str(foreign_slot)),
        422,
    )
    assert_problem(await act(session_id, "no-show", "learner", sub=learner, party="learner"), 403)
    assert_problem(
        await act(session_id, "no-show", "consultant", sub=consultant, party="consultant"), 403
    )
    not_yet = assert_problem(
        await act(session_id, "no-show", "consultant", sub=consultant, party="learner"), 409
    )
    assert not_yet["type"].endswith("/invalid-state")
    # Allowed by the stored session, so it goes to the workflow, which is unreachable.
    assert_problem(
        await act(session_id, "reschedule", "consultant", sub=consultant, slot_id=str(own_slot)),
        503,
    )
    assert_problem(await act(session_id, "cancel", "operator", sub=uuid.uuid4()), 503)


async def test_a_reschedule_to_a_chosen_start_is_checked_like_a_submitted_one(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    consultant = await backend.consultant()
    session_id = await _session(backend, learner, consultant, days=3)
    block = await backend.slot(consultant, future(6), hours=3)
    elsewhere = await backend.slot(consultant, future(6, hour=14), hours=2)
    headers = tokens.headers("learner", sub=learner)

    async def move(slot: uuid.UUID, start: Any) -> httpx.Response:
        body = {"slot_id": str(slot), "start": start.isoformat()}
        return await client.post(f"{URL}/{session_id}/reschedule", json=body, headers=headers)

    off_grid = assert_problem(await move(block, future(6) + timedelta(minutes=20)), 422)
    assert off_grid["type"].endswith("/start-off-grid")
    outside = assert_problem(await move(block, future(6, hour=14)), 409)  # the other slot's
    assert outside["type"].endswith("/start-unavailable")
    assert outside["reason"] == "outside_slot"
    # On offer: on to the workflow, which is unreachable here.
    assert_problem(await move(elsewhere, future(6, hour=14) + timedelta(minutes=30)), 503)
    assert_problem(await move(block, future(6) + timedelta(hours=1, minutes=45)), 503)
